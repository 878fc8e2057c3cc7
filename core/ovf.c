/* OVF descriptors: the parts of the OVF envelope (DMTF DSP0243) that say
 * which files hold the disks, read with the bounded XML reader of xml.c.
 * <References><File> and <DiskSection><Disk> are kept; everything else
 * is skipped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/ova.h"
#include "core/xml.h"

/* OVF 1.x and 2.x (DSP0243) put the envelope in
 * http://schemas.dmtf.org/ovf/envelope/1 (or /2); some producers write
 * it without the version; VMware's pre-standard OVF 0.9 used its own. */
static bool ovf_ns(const char *uri)
{
	static const char dmtf[] = "http://schemas.dmtf.org/ovf/envelope";

	if (!uri)
		return false;
	if (!strncmp(uri, dmtf, sizeof(dmtf) - 1)) {
		const char *rest = uri + sizeof(dmtf) - 1;

		return !*rest || !strcmp(rest, "/") || !strcmp(rest, "/1") ||
		       !strcmp(rest, "/2");
	}
	return !strcmp(uri, "http://www.vmware.com/schema/ovf/1/envelope");
}

static bool ovf_is(const struct vd_xml_tag *t, const char *local)
{
	return ovf_ns(t->uri) && vd_xml_str_eq(t->local, local);
}

struct ovf_state {
	struct vd_xml *x;
	struct vd_ovf *o;
	bool envelope;
	unsigned refs_depth;  /* depth of the open <References>, or 0 */
	unsigned disks_depth; /* depth of the open <DiskSection>, or 0 */
	bool disk_section;    /* one was seen */
	const char *root_uri; /* root_only probing: what the root was */
	bool root_is_envelope;
};

/* The ovf:NAME attribute of t (unprefixed NAME too: some producers omit
 * the prefix), decoded, or NULL in *v_r. */
static int ovf_attr(struct ovf_state *s, const struct vd_xml_tag *t,
		    const char *name, char **v_r)
{
	*v_r = NULL;
	for (unsigned i = 0; i < t->n_attrs; i++) {
		const struct vd_xml_attr *a = &t->attrs[i];

		if (vd_xml_str_eq(a->local, name) && (!a->uri || ovf_ns(a->uri)))
			return vd_xml_value(s->x, a, v_r);
	}
	return 0;
}

static int ovf_number(struct ovf_state *s, const struct vd_xml_tag *t,
		      const char *name, uint64_t *v_r, bool *has_r)
{
	char *v;
	int ret = ovf_attr(s, t, name, &v);

	*v_r = 0;
	if (has_r)
		*has_r = false;
	if (ret || !v)
		return ret;
	if (!v[0])
		goto bad;
	for (const char *c = v; *c; c++) {
		if (*c < '0' || *c > '9' ||
		    __builtin_mul_overflow(*v_r, 10, v_r) ||
		    __builtin_add_overflow(*v_r, (uint64_t)(*c - '0'), v_r))
			goto bad;
	}
	free(v);
	if (has_r)
		*has_r = true;
	return 0;
bad:
	ret = VD_XML_FAIL(s->x, t->local.p, -EUCLEAN, "ovf:%s=\"%s\" is not a "
		       "number of bytes", name, v);
	free(v);
	return ret;
}

static int ovf_file(struct ovf_state *s, const struct vd_xml_tag *t)
{
	struct vd_ovf *o = s->o;
	struct vd_ovf_file *f;
	int ret;

	if (o->n_files >= VD_OVF_MAX_ENTRIES)
		return VD_XML_FAIL(s->x, t->local.p, -EUCLEAN, "more than %u File "
				"entries", VD_OVF_MAX_ENTRIES);
	f = &o->files[o->n_files];
	memset(f, 0, sizeof(*f));
	o->n_files++; /* so that vd_ovf_free frees what is filled */
	ret = ovf_attr(s, t, "id", &f->id);
	if (!ret)
		ret = ovf_attr(s, t, "href", &f->href);
	if (!ret)
		ret = ovf_attr(s, t, "compression", &f->compression);
	if (!ret)
		ret = ovf_number(s, t, "size", &f->size, &f->has_size);
	if (!ret)
		ret = ovf_number(s, t, "chunkSize", &f->chunk_size, NULL);
	if (ret)
		return ret;
	if (!f->id || !f->href || !f->id[0] || !f->href[0])
		return VD_XML_FAIL(s->x, t->local.p, -EUCLEAN, "File without "
				"ovf:id or ovf:href");
	for (unsigned i = 0; i + 1 < o->n_files; i++)
		if (!strcmp(o->files[i].id, f->id))
			return VD_XML_FAIL(s->x, t->local.p, -EUCLEAN, "two Files "
					"with ovf:id=\"%s\"", f->id);
	return 0;
}

static int ovf_disk(struct ovf_state *s, const struct vd_xml_tag *t)
{
	struct vd_ovf *o = s->o;
	struct vd_ovf_disk *dk;
	int ret;

	if (o->n_disks >= VD_OVF_MAX_ENTRIES)
		return VD_XML_FAIL(s->x, t->local.p, -EUCLEAN, "more than %u Disk "
				"entries", VD_OVF_MAX_ENTRIES);
	dk = &o->disks[o->n_disks];
	memset(dk, 0, sizeof(*dk));
	dk->file = -1;
	o->n_disks++;
	ret = ovf_attr(s, t, "diskId", &dk->disk_id);
	if (!ret)
		ret = ovf_attr(s, t, "fileRef", &dk->file_ref);
	if (ret)
		return ret;
	if (!dk->disk_id || !dk->disk_id[0])
		return VD_XML_FAIL(s->x, t->local.p, -EUCLEAN, "Disk without "
				"ovf:diskId");
	if (dk->file_ref && !dk->file_ref[0]) {
		free(dk->file_ref);
		dk->file_ref = NULL;
	}
	return 0;
}

static int ovf_start(void *ctx, const struct vd_xml_tag *t)
{
	struct ovf_state *s = ctx;

	if (t->depth == 1) {
		s->root_uri = t->uri;
		s->root_is_envelope = ovf_is(t, "Envelope");
		if (!s->o)
			return 0; /* probing */
		if (!s->root_is_envelope)
			return VD_XML_FAIL(s->x, t->local.p, -EUCLEAN, "the root "
					"element is <%.*s>%s%s%s, not an OVF "
					"Envelope", (int)t->local.n,
					t->local.p,
					t->uri ? " (namespace " : "",
					t->uri ? t->uri : "",
					t->uri ? ")" : "");
		s->envelope = true;
		return 0;
	}
	/* References: a child of the Envelope (DSP0243 7.1). */
	if (t->depth == 2 && ovf_is(t, "References")) {
		s->refs_depth = t->depth;
		return 0;
	}
	if (s->refs_depth && t->depth == s->refs_depth + 1 &&
	    ovf_is(t, "File"))
		return ovf_file(s, t);
	/* DiskSection: an Envelope-level section (DSP0243 9.1); accepted
	 * wherever it is, but not nested in itself. */
	if (!s->disks_depth && ovf_is(t, "DiskSection")) {
		s->disks_depth = t->depth;
		s->disk_section = true;
		return 0;
	}
	if (s->disks_depth && t->depth == s->disks_depth + 1 &&
	    ovf_is(t, "Disk"))
		return ovf_disk(s, t);
	return 0;
}

static int ovf_end(void *ctx, const struct vd_xml_tag *t)
{
	struct ovf_state *s = ctx;

	if (t->depth == s->refs_depth)
		s->refs_depth = 0;
	if (t->depth == s->disks_depth)
		s->disks_depth = 0;
	return 0;
}

bool vd_ovf_probe(const char *buf, size_t len)
{
	struct ovf_state s = { 0 };
	struct vd_xml x = { .path = "", .what = "OVF descriptor", .on_start = ovf_start, .ctx = &s };
	bool yes;

	s.x = &x;
	yes = !vd_xml_parse(&x, buf, len, true) && s.root_is_envelope;
	vd_xml_done(&x);
	return yes;
}

void vd_ovf_free(struct vd_ovf *o)
{
	if (!o)
		return;
	for (unsigned i = 0; i < o->n_files; i++) {
		free(o->files[i].id);
		free(o->files[i].href);
		free(o->files[i].compression);
	}
	for (unsigned i = 0; i < o->n_disks; i++) {
		free(o->disks[i].disk_id);
		free(o->disks[i].file_ref);
	}
	free(o->files);
	free(o->disks);
	free(o);
}

int vd_ovf_parse(const char *buf, size_t len, const char *path,
		 struct vd_ovf **o_r, struct vd_err *e)
{
	struct ovf_state s = { 0 };
	struct vd_xml *x;
	struct vd_ovf *o;
	int ret;

	if (len > VD_OVF_MAX_BYTES)
		return vd_fail(e, -EUCLEAN, "%s: OVF descriptor of %zu bytes "
			       "(at most %u)", path, len, VD_OVF_MAX_BYTES);
	x = calloc(1, sizeof(*x));
	o = calloc(1, sizeof(*o));
	if (o) {
		o->files = calloc(VD_OVF_MAX_ENTRIES, sizeof(*o->files));
		o->disks = calloc(VD_OVF_MAX_ENTRIES, sizeof(*o->disks));
	}
	if (!x || !o || !o->files || !o->disks) {
		free(x);
		vd_ovf_free(o);
		return vd_fail(e, -ENOMEM, "%s: out of memory", path);
	}
	x->path = path;
	x->what = "OVF descriptor";
	x->e = e;
	x->on_start = ovf_start;
	x->on_end = ovf_end;
	x->ctx = &s;
	s.x = x;
	s.o = o;
	ret = vd_xml_parse(x, buf, len, false);
	if (ret == -ENOMEM)
		vd_fail(e, ret, "%s: out of memory", path);
	if (!ret && !s.disk_section)
		ret = vd_fail(e, -EUCLEAN, "%s: OVF descriptor has no "
			      "DiskSection", path);
	if (!ret && !o->n_disks)
		ret = vd_fail(e, -EUCLEAN, "%s: OVF DiskSection lists no Disk",
			      path);
	/* Each fileRef names a File (DSP0243 9.1: "ovf:fileRef ... shall
	 * reference a File element in the References element"). */
	for (unsigned i = 0; !ret && i < o->n_disks; i++) {
		struct vd_ovf_disk *dk = &o->disks[i];

		if (!dk->file_ref)
			continue;
		for (unsigned j = 0; j < o->n_files && dk->file < 0; j++)
			if (!strcmp(o->files[j].id, dk->file_ref))
				dk->file = (int)j;
		if (dk->file < 0)
			ret = vd_fail(e, -EUCLEAN, "%s: OVF Disk '%s' has "
				      "ovf:fileRef=\"%s\", which no File in "
				      "References has as ovf:id", path,
				      dk->disk_id, dk->file_ref);
	}
	vd_xml_done(x);
	free(x);
	if (ret) {
		vd_ovf_free(o);
		return ret;
	}
	*o_r = o;
	return 0;
}
