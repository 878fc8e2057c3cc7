/* Replay saved inputs through a fuzz target without libFuzzer:
 *
 *   fuzz-NAME FILE|DIR...
 *
 * Every regular file named, and every file under a named folder (sorted,
 * recursively), is fed once to LLVMFuzzerTestOneInput. Prints one line
 * per input with FUZZ_LOG set, and at the end "replayed N inputs". A
 * crash or a sanitizer report ends the program as it would end the
 * fuzzer; an unreadable argument is exit 2. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/* Inputs larger than this are not ours (seeds are at most 4 MiB). */
#define REPLAY_MAX_BYTES (64u << 20)

static unsigned replay_count;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
	    (unsigned long)n > REPLAY_MAX_BYTES || fseek(f, 0, SEEK_SET)) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	if (getenv("FUZZ_LOG"))
		fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	replay_count++;
	return 0;
}

/* depth: folders are nested at most 8 deep in a corpus of ours. */
static int replay_path(const char *path, unsigned depth)
{
	struct dirent **names;
	struct stat st;
	int n, ret = 0;

	if (stat(path, &st)) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	if (depth > 8)
		return 0;
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		perror(path);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *sub;

		if (names[i]->d_name[0] != '.' &&
		    asprintf(&sub, "%s/%s", path, names[i]->d_name) >= 0) {
			if (replay_path(sub, depth + 1))
				ret = -1;
			free(sub);
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	int ret = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], 0))
			ret = 2;
	printf("replayed %u inputs\n", replay_count);
	return ret;
}
