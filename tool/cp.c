/* vdtool cp: not written yet. */
#include "tool/vdtool.h"

int vdt_cp(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	vdt_error("not implemented yet");
	return VDT_EXIT_FAIL;
}
