/* fdisk-list [-b SECTOR_SIZE] FILE — the partition table of a raw file as
 * libfdisk (util-linux) reads it: the oracle that tests/t-90-parts.sh
 * compares the product's list with (`part_test --list`, same format):
 *
 *   table LABEL SECTOR_SIZE          LABEL: dos, gpt or none
 *   N START SIZE TYPE EXTRA [NAME]   one per partition, in libfdisk's order
 *
 * N as Linux numbers partitions (libfdisk's partno + 1); START and SIZE in
 * bytes; TYPE "0x83" (dos) or the type GUID in lower case (gpt); EXTRA "*"
 * or "-" for the dos boot flag, the partition GUID in lower case for gpt;
 * NAME the GPT name, control characters shown as '?'. libfdisk assumes
 * 512-byte sectors for a file unless -b says otherwise. */
#include <ctype.h>
#include <errno.h>
#include <libfdisk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_lower(const char *s)
{
	for (; *s; s++)
		putchar(tolower((unsigned char)*s));
}

static void print_name(const char *s)
{
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

int main(int argc, char **argv)
{
	struct fdisk_context *cxt;
	struct fdisk_table *tb = NULL;
	struct fdisk_iter *itr;
	struct fdisk_partition *pa;
	struct fdisk_label *lb;
	unsigned long ss = 0;
	const char *path;
	int opt, gpt, rc;

	while ((opt = getopt(argc, argv, "b:")) != -1) {
		if (opt != 'b') {
			fprintf(stderr, "usage: fdisk-list [-b SECTOR_SIZE] FILE\n");
			return 2;
		}
		ss = strtoul(optarg, NULL, 0);
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: fdisk-list [-b SECTOR_SIZE] FILE\n");
		return 2;
	}
	path = argv[optind];

	cxt = fdisk_new_context();
	if (!cxt)
		return 1;
	if (ss && fdisk_save_user_sector_size(cxt, (unsigned)ss, (unsigned)ss)) {
		fprintf(stderr, "fdisk-list: bad sector size %lu\n", ss);
		return 1;
	}
	rc = fdisk_assign_device(cxt, path, 1);
	if (rc) {
		fprintf(stderr, "fdisk-list: %s: %s\n", path, strerror(-rc));
		return 1;
	}
	ss = fdisk_get_sector_size(cxt);
	if (!fdisk_has_label(cxt)) {
		printf("table none %lu\n", ss);
		goto out;
	}
	lb = fdisk_get_label(cxt, NULL);
	gpt = !strcmp(fdisk_label_get_name(lb), "gpt");
	printf("table %s %lu\n", fdisk_label_get_name(lb), ss);
	if (fdisk_get_partitions(cxt, &tb)) {
		fprintf(stderr, "fdisk-list: %s: cannot list partitions\n",
			path);
		return 1;
	}
	itr = fdisk_new_iter(FDISK_ITER_FORWARD);
	while (fdisk_table_next_partition(tb, itr, &pa) == 0) {
		struct fdisk_parttype *t = fdisk_partition_get_type(pa);
		const char *s;

		printf("%zu %llu %llu ", fdisk_partition_get_partno(pa) + 1,
		       (unsigned long long)fdisk_partition_get_start(pa) * ss,
		       (unsigned long long)fdisk_partition_get_size(pa) * ss);
		if (!t)
			printf("?");
		else if (fdisk_label_has_code_parttypes(lb))
			printf("0x%02x", fdisk_parttype_get_code(t));
		else
			print_lower(fdisk_parttype_get_string(t));
		if (gpt) {
			s = fdisk_partition_get_uuid(pa);
			putchar(' ');
			print_lower(s ? s : "?");
		} else {
			printf(" %s", fdisk_partition_is_bootable(pa) ? "*" : "-");
		}
		s = fdisk_partition_get_name(pa);
		if (gpt && s && *s) {
			putchar(' ');
			print_name(s);
		}
		putchar('\n');
	}
	fdisk_free_iter(itr);
	fdisk_unref_table(tb);
out:
	fdisk_unref_context(cxt);
	return 0;
}
