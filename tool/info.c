/* vdtool info: not written yet. */
#include "tool/vdtool.h"

int vdt_info(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	vdt_error("not implemented yet");
	return VDT_EXIT_FAIL;
}
