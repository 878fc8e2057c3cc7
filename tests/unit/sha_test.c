/* common/sha.c against the FIPS 180-4 example vectors, and against
 * coreutils' sha1sum and sha256sum (an oracle we did not write) on random
 * buffers of every length from 0 to 300 bytes and of 1 MiB, fed whole and
 * in uneven pieces. */
#include <stdint.h>
#include <sys/stat.h>

#include "common/sha.h"
#include "tests/unit/unit.h"

#define SHA_MAX_LEN 300
#define SHA_BIG (1u << 20)

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = '\0';
}

/* Digest of buf: whole when step is 0, else in pieces of 1, 2, ...
 * step bytes, cycling. */
static void digest(enum vd_sha_alg alg, const uint8_t *buf, size_t len,
		   size_t step, char *out)
{
	struct vd_sha s;
	uint8_t d[VD_SHA_MAX_LEN];
	size_t off = 0, piece = 1;

	vd_sha_init(&s, alg);
	if (!step) {
		vd_sha_update(&s, buf, len);
	} else {
		while (off < len) {
			size_t n = piece < len - off ? piece : len - off;

			vd_sha_update(&s, buf + off, n);
			off += n;
			piece = piece % step + 1;
		}
		vd_sha_update(&s, buf, 0);
	}
	vd_sha_final(&s, d);
	hex(d, vd_sha_len(alg), out);
}

static void vectors(void)
{
	static const struct {
		const char *msg;
		unsigned repeat;
		const char *sha1, *sha256;
	} v[] = {
		{ "abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d",
		  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709",
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
		  "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "a", 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
		  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i].msg), len = n * v[i].repeat;
		uint8_t *buf = malloc(len + 1);
		char out[2 * VD_SHA_MAX_LEN + 1];

		if (!buf)
			abort();
		for (unsigned r = 0; r < v[i].repeat; r++)
			memcpy(buf + r * n, v[i].msg, n);
		digest(VD_SHA1, buf, len, 0, out);
		CHECK("sha1 vector", !strcmp(out, v[i].sha1));
		digest(VD_SHA256, buf, len, 0, out);
		CHECK("sha256 vector", !strcmp(out, v[i].sha256));
		digest(VD_SHA256, buf, len, 97, out);
		CHECK("sha256 vector in pieces", !strcmp(out, v[i].sha256));
		free(buf);
	}
	CHECK("names", !strcmp(vd_sha_name(VD_SHA1), "SHA1") &&
			       !strcmp(vd_sha_name(VD_SHA256), "SHA256"));
}

/* Run tool over the files of dir (len000 ... len300, big) and compare
 * each line with our digest. */
static void against(const char *tool, enum vd_sha_alg alg, const char *dir,
		    uint8_t *const *bufs, const size_t *lens, unsigned n)
{
	char cmd[512], line[1024], ours[2 * VD_SHA_MAX_LEN + 1];
	unsigned seen = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "cd %s && %s len* big", dir, tool);
	p = popen(cmd, "r");
	if (!p) {
		CHECK("popen", 0);
		return;
	}
	while (fgets(line, sizeof(line), p)) {
		char want[2 * VD_SHA_MAX_LEN + 1], name[64];
		unsigned idx;

		if (sscanf(line, "%64s %63s", want, name) != 2)
			continue;
		if (!strcmp(name, "big"))
			idx = n - 1;
		else if (sscanf(name, "len%u", &idx) != 1 || idx >= n - 1)
			continue;
		digest(alg, bufs[idx], lens[idx], 0, ours);
		CHECK(tool, !strcmp(ours, want));
		digest(alg, bufs[idx], lens[idx], 67, ours);
		CHECK(tool, !strcmp(ours, want));
		if (strcmp(ours, want))
			printf("  %s %s: ours %s\n", tool, name, ours);
		seen++;
	}
	CHECK("tool ran", pclose(p) == 0);
	CHECK("every file compared", seen == n);
}

int main(void)
{
	enum { N = SHA_MAX_LEN + 2 };
	char dir[] = "/tmp/sha_test.XXXXXX", path[256];
	uint8_t *bufs[N];
	size_t lens[N];

	vectors();
	if (!mkdtemp(dir))
		abort();
	srand(180);
	for (unsigned i = 0; i < N; i++) {
		lens[i] = i < N - 1 ? i : SHA_BIG;
		bufs[i] = malloc(lens[i] + 1);
		if (!bufs[i])
			abort();
		for (size_t k = 0; k < lens[i]; k++)
			bufs[i][k] = (uint8_t)rand();
		if (i < N - 1)
			snprintf(path, sizeof(path), "%s/len%03u", dir, i);
		else
			snprintf(path, sizeof(path), "%s/big", dir);
		FILE *f = fopen(path, "wb");

		if (!f || fwrite(bufs[i], 1, lens[i], f) != lens[i] || fclose(f))
			abort();
	}
	against("sha1sum", VD_SHA1, dir, bufs, lens, N);
	against("sha256sum", VD_SHA256, dir, bufs, lens, N);
	for (unsigned i = 0; i < N; i++) {
		if (i < N - 1)
			snprintf(path, sizeof(path), "%s/len%03u", dir, i);
		else
			snprintf(path, sizeof(path), "%s/big", dir);
		unlink(path);
		free(bufs[i]);
	}
	rmdir(dir);
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
