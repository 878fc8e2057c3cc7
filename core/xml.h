/* A small, strict, bounded XML reader for descriptors that are hostile
 * input (an OVF envelope): see xml.c for the subset it reads and its
 * limits. The caller fills path, what, e and the callbacks, and sees
 * every element's start and end tag with its attributes. */
#ifndef VD_XML_H
#define VD_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define VD_XML_MAX_DEPTH 64u
#define VD_XML_MAX_ATTRS 256u
#define VD_XML_MAX_NS 256u

/* A span of the input. */
struct vd_xml_str {
	const char *p;
	size_t n;
};

struct vd_xml_attr {
	struct vd_xml_str qname;
	struct vd_xml_str local;
	const char *uri;     /* NULL: no namespace (unprefixed) */
	struct vd_xml_str raw;  /* the value as written, entities undecoded */
};

struct vd_xml_tag {
	struct vd_xml_str local;
	const char *uri; /* NULL: no namespace */
	unsigned depth;	 /* 1 for the root element */
	struct vd_xml_attr *attrs;
	unsigned n_attrs;
};

struct vd_xml_ns {
	struct vd_xml_str prefix; /* empty: the default namespace */
	char *uri;	       /* decoded; "" undeclares the default */
	unsigned depth;	       /* of the element that declared it */
};

struct vd_xml {
	const char *buf, *p, *end;
	const char *path;
	const char *what; /* for messages: "OVF descriptor" */
	struct vd_err *e;
	struct vd_xml_str stack[VD_XML_MAX_DEPTH]; /* open elements' qnames */
	unsigned depth;
	struct vd_xml_ns ns[VD_XML_MAX_NS];
	unsigned n_ns;
	struct vd_xml_attr attrs[VD_XML_MAX_ATTRS];
	bool seen_root;
	/* Called for each start tag (also of an empty element); a
	 * non-zero return stops the reader and is returned. */
	int (*on_start)(void *ctx, const struct vd_xml_tag *t);
	int (*on_end)(void *ctx, const struct vd_xml_tag *t);
	void *ctx;
};

/* A one-line error naming the file and the line of `at`. */
#define VD_XML_FAIL(x, at, err, fmt, ...)                                     \
	vd_fail((x)->e, err, "%s: %s line %u: " fmt, (x)->path, (x)->what, \
		vd_xml_line(x, at), ##__VA_ARGS__)

unsigned vd_xml_line(const struct vd_xml *x, const char *at);
bool vd_xml_str_eq(struct vd_xml_str s, const char *lit);
/* An attribute's value, entities decoded, NUL-terminated (malloc'd). */
int vd_xml_value(struct vd_xml *x, const struct vd_xml_attr *a, char **out_r);
/* Read the document in buf. With root_only, stop after the root's start
 * tag (the start callback sees it) and return 0. */
int vd_xml_parse(struct vd_xml *x, const char *buf, size_t len,
		 bool root_only);
/* Free what the reader keeps (namespace bindings). */
void vd_xml_done(struct vd_xml *x);

#endif
