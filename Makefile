# vdmount — plain GNU make with pkg-config.
#
#   make            build/vdmount and build/vdtool
#   make check      install missing packages, build (also under ASan+UBSan), run every test
#   make check-full make check with the slow, exhaustive cases too (VD_FULL=1)
#   make demo       install missing packages, build, mount a small sample qcow2 chain
#   make fuzz       run every libFuzzer target for a while (tests/fuzz/run.sh)
#   make bench      vdmount beside its peers: throughput, latency, memory (see bench/)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS    := fuse3 zlib libzstd libdeflate ext2fs com_err
# Loaded on first use, not linked (common/lazy.h): encryption, NTFS, and
# btrfs' LZO extents, xxhash64 and BLAKE2b checksums; vdtool inspect's hivex,
# librpm and sqlite3.
LAZY_PKGS := libcryptsetup libcrypto libntfs-3g lzo2 libxxhash libb2 \
	     hivex rpm sqlite3

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(LAZY_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# The soname of library FILE (without .so) of pkg-config package PKG, as
# the linker would have recorded it; the unversioned name if not found.
soname = $(or $(shell objdump -p "$$(pkg-config --variable=libdir $(1) 2>/dev/null)/$(2).so" 2>/dev/null | awk '/SONAME/ {print $$2}'),$(2).so)
LAZY_DEFS := -DVD_SONAME_CRYPTSETUP='"$(call soname,libcryptsetup,libcryptsetup)"' \
	     -DVD_SONAME_CRYPTO='"$(call soname,libcrypto,libcrypto)"' \
	     -DVD_SONAME_NTFS3G='"$(call soname,libntfs-3g,libntfs-3g)"' \
	     -DVD_SONAME_LZO2='"$(call soname,lzo2,liblzo2)"' \
	     -DVD_SONAME_XXHASH='"$(call soname,libxxhash,libxxhash)"' \
	     -DVD_SONAME_B2='"$(call soname,libb2,libb2)"' \
	     -DVD_SONAME_HIVEX='"$(call soname,hivex,libhivex)"' \
	     -DVD_SONAME_RPM='"$(call soname,rpm,librpm)"' \
	     -DVD_SONAME_SQLITE3='"$(call soname,sqlite3,libsqlite3)"'
# vdtool inspect's Windows registry hives (hivex) and rpm databases
# (librpm, sqlite3 to check an SQLite one first) are among LAZY_PKGS.
VDT_CFLAGS :=
VDT_LIBS   :=

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) -pthread -I. -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(PKG_CFLAGS) $(LAZY_DEFS) $(CFLAGS)
SAN_FLAGS  := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	      -fno-omit-frame-pointer
LDLIBS   := $(PKG_LIBS) -pthread
# The release binaries carry PKGS' libraries, from their archives, instead
# of loading six shared libraries at every exec: vdmount's start-up is
# timed (exec to the first stat, < 50 ms), and the dynamic loader's work
# for them (opening, mapping and relocating each; with the cache cold,
# reading each from disk in turn) cost `vdmount --version` 5-8 ms of CPU
# against 2 ms, and with the cache cold 29 ms against 22 (medians of
# 15); vdmount --overlay's CPU from exec to return, 16-27 ms against 10.
# Only where every archive is there (Debian: the -dev packages have
# them); else, or with STATIC_LIBS=0, as before. libc and
# the libraries loaded on first use (LAZY_PKGS) stay shared; the
# sanitizer builds link as before.
STATIC_LIBS ?= 1
STATIC_NAMES := fuse3 ext2fs com_err zstd deflate z
STATIC_HAVE := $(if $(filter 1,$(STATIC_LIBS)),$(shell for l in $(STATIC_NAMES); do \
	f=$$($(CC) -print-file-name=lib$$l.a); [ -f "$$f" ] || exit 0; done; echo yes))
ifeq ($(STATIC_HAVE),yes)
REL_LDLIBS := $(shell pkg-config --libs-only-L $(PKGS) 2>/dev/null) \
	-Wl,-Bstatic $(addprefix -l,$(STATIC_NAMES)) -Wl,-Bdynamic -ldl -lrt -pthread
else
REL_LDLIBS := $(LDLIBS)
endif

# Layers below fuse/ form one library that every front end links.
LIB_SRCS  := $(wildcard common/*.c core/*.c volumes/*.c fsread/*.c ns/*.c)
FUSE_SRCS := $(wildcard fuse/*.c)
VDT_SRCS  := $(wildcard tool/*.c)
UNIT_SRCS := $(wildcard tests/unit/*.c)
# Test helpers that link outside libraries as oracles (libfdisk).
TOOL_SRCS := $(wildcard tests/tools/*.c)
# Fuzz targets (tests/fuzz/fuzz-NAME.c): each links with replay.c into a
# program that replays saved inputs (make check), or with libFuzzer
# (make fuzz, see tests/fuzz/run.sh).
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz-common.c,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_HELP := tests/fuzz/fuzz-common.c tests/fuzz/replay.c

BUILD ?= build
REL  := $(BUILD)/obj
SAN  := $(BUILD)/asan

LIB_OBJS      := $(LIB_SRCS:%.c=$(REL)/%.o)
FUSE_OBJS     := $(FUSE_SRCS:%.c=$(REL)/%.o)
SAN_LIB_OBJS  := $(LIB_SRCS:%.c=$(SAN)/%.o)
SAN_FUSE_OBJS := $(FUSE_SRCS:%.c=$(SAN)/%.o)
VDT_OBJS      := $(VDT_SRCS:%.c=$(REL)/%.o)
SAN_VDT_OBJS  := $(VDT_SRCS:%.c=$(SAN)/%.o)
UNIT_BINS     := $(UNIT_SRCS:tests/unit/%.c=$(SAN)/tests/%)
TOOL_BINS     := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
FUZZ_BINS     := $(FUZZ_SRCS:tests/fuzz/%.c=$(SAN)/fuzz/%)

.PHONY: all check check-full check-build demo bench install uninstall clean deps fuzz
all: $(BUILD)/vdmount $(BUILD)/vdtool

deps:
	@sh scripts/install-deps.sh

$(BUILD)/vdmount: $(LIB_OBJS) $(FUSE_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(REL_LDLIBS)

$(SAN)/vdmount: $(SAN_LIB_OBJS) $(SAN_FUSE_OBJS)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(VDT_OBJS) $(SAN_VDT_OBJS): ALL_CFLAGS += $(VDT_CFLAGS)

$(BUILD)/vdtool: $(LIB_OBJS) $(VDT_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(REL_LDLIBS) $(VDT_LIBS)

$(SAN)/vdtool: $(SAN_LIB_OBJS) $(SAN_VDT_OBJS)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) $(VDT_LIBS)

$(SAN)/tests/%: tests/unit/%.c $(SAN_LIB_OBJS) $(wildcard tests/unit/*.h) $(wildcard tool/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(LDLIBS)

$(SAN)/fuzz/%: tests/fuzz/%.c $(FUZZ_HELP) tests/fuzz/fuzz.h $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $< $(FUZZ_HELP) $(SAN_LIB_OBJS) \
		$(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags fdisk) -o $@ $< \
		$(shell pkg-config --libs fdisk)

$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(SAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -MMD -MP -c -o $@ $<

-include $(LIB_OBJS:.o=.d) $(FUSE_OBJS:.o=.d) $(SAN_LIB_OBJS:.o=.d) $(SAN_FUSE_OBJS:.o=.d)
-include $(VDT_OBJS:.o=.d) $(SAN_VDT_OBJS:.o=.d)

# The sub-makes below compile on every core (BUILD_JOBS=1 for one).
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

# Prerequisites first (pkg-config must see the libraries before the
# compile flags are computed), then a sub-make does the building.
check: deps
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) check-build
	@BUILD=$(BUILD) bash tests/run.sh

# Scripts run their slow, exhaustive cases only when VD_FULL=1; the
# long stress mode goes with them.
check-full:
	@VD_FULL=1 sh scripts/install-deps.sh
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) check-build
	@BUILD=$(BUILD) VD_FULL=1 VD_STRESS=long bash tests/run.sh

check-build: $(BUILD)/vdmount $(SAN)/vdmount $(BUILD)/vdtool $(SAN)/vdtool \
	     $(UNIT_BINS) $(TOOL_BINS) $(FUZZ_BINS)

# Every fuzz target under libFuzzer with ASan and UBSan (needs clang-14),
# FUZZ_SECONDS each (default 120); FUZZ_TARGETS="qcow2 ext" picks some.
# Not part of check: its replay of saved crashers is (tests/t-98-fuzz.sh).
fuzz:
	@BUILD=$(BUILD) bash tests/fuzz/run.sh

demo: deps
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) all
	@BUILD=$(BUILD) sh scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) all
	@BUILD=$(BUILD) bash bench/run.sh

install: $(BUILD)/vdmount $(BUILD)/vdtool
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILD)/vdmount $(BUILD)/vdtool $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 man/vdmount.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	[ ! -f man/vdtool.1 ] || \
		install -m 0644 man/vdtool.1 $(DESTDIR)$(PREFIX)/share/man/man1/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vdmount $(DESTDIR)$(PREFIX)/bin/vdtool \
		$(DESTDIR)$(PREFIX)/share/man/man1/vdmount.1 \
		$(DESTDIR)$(PREFIX)/share/man/man1/vdtool.1

clean:
	rm -rf $(BUILD)
