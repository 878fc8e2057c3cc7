/* vdtool verify: not written yet. */
#include "tool/vdtool.h"

int vdt_verify(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	vdt_error("not implemented yet");
	return VDT_EXIT_FAIL;
}
