/*
 * main.c: abqctl's entry point. Everything else is in the abq_ctl library
 * (abqctl.c and the command handlers), so that the fuzz target
 * (fuzz/fuzz_abqctl.c) runs the very same code in-process.
 */
#include "ctl/ctl.h"

int
main(int argc, char **argv)
{
	return abqctl_main(argc, argv);
}
