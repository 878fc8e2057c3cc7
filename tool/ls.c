/* vdtool ls and cat: not written yet. */
#include "tool/vdtool.h"

int vdt_ls(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	vdt_error("not implemented yet");
	return VDT_EXIT_FAIL;
}
int vdt_cat(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	vdt_error("not implemented yet");
	return VDT_EXIT_FAIL;
}
