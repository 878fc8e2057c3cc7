/* vdtool convert: not written yet. */
#include "tool/vdtool.h"

int vdt_convert(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	vdt_error("not implemented yet");
	return VDT_EXIT_FAIL;
}
