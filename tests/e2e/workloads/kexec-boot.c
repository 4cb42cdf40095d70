// SPDX-License-Identifier: GPL-2.0
/*
 * kexec-boot: load an x86-64 bzImage and an initramfs with kexec_load(2)
 * and boot them right away (the guest kernel has CONFIG_KEXEC but not
 * KEXEC_FILE, and Debian's kexec-tools pulls in the Xen libraries).
 *   kexec-boot BZIMAGE INITRD [CMDLINE]      (default: /proc/cmdline)
 *
 * The 64-bit boot protocol: the protected-mode kernel is loaded at its
 * preferred address (the guest kernel is not relocatable), boot_params
 * carry the setup header, the command line, the initrd and an e820 map
 * made from /proc/iomem, and a few bytes of purgatory load %rsi with
 * boot_params and jump to startup_64 (load address + 0x200); the
 * compressed kernel loads its own GDT and page tables.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kexec.h>
#include <linux/reboot.h>

#define PG 4096UL
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((a) - 1))

static void die(const char *msg)
{
	fprintf(stderr, "kexec-boot: %s\n", msg);
	exit(1);
}

static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		die(path);
	buf = malloc(ALIGN_UP((size_t)st.st_size, PG) + PG);
	if (!buf || read(fd, buf, st.st_size) != st.st_size)
		die(path);
	close(fd);
	*len = st.st_size;
	return buf;
}

#define U8(p, o) (*(uint8_t *)((char *)(p) + (o)))
#define U32(p, o) (*(uint32_t *)((char *)(p) + (o)))
#define U64(p, o) (*(uint64_t *)((char *)(p) + (o)))

int main(int argc, char **argv)
{
	size_t klen, ilen, hdr_end, setup, cl_len;
	char *kernel, *initrd, cmdline[4096], *misc;
	uint64_t load, init_size, misc_addr, initrd_addr, bp_addr, cl_addr, pg_addr;
	struct kexec_segment seg[3];
	unsigned int n = 0;
	char line[256];
	FILE *f;

	if (argc < 3)
		die("usage: kexec-boot BZIMAGE INITRD [CMDLINE]");
	kernel = slurp(argv[1], &klen);
	initrd = slurp(argv[2], &ilen);
	if (argc > 3) {
		snprintf(cmdline, sizeof(cmdline), "%s", argv[3]);
	} else {
		f = fopen("/proc/cmdline", "r");
		if (!f || !fgets(cmdline, sizeof(cmdline), f))
			die("/proc/cmdline");
		fclose(f);
		cmdline[strcspn(cmdline, "\n")] = 0;
	}
	if (memcmp(kernel + 0x202, "HdrS", 4) || !(U8(kernel, 0x236) & 1))
		die("not a bzImage with a 64-bit entry");
	setup = (U8(kernel, 0x1f1) ? U8(kernel, 0x1f1) : 4) + 1;
	setup *= 512;
	load = U64(kernel, 0x258);			/* pref_address */
	init_size = U32(kernel, 0x260);
	hdr_end = 0x202 + U8(kernel, 0x201);

	/* boot_params, command line, purgatory: one segment above the kernel */
	misc_addr = ALIGN_UP(load + init_size, 0x200000) + 0x200000;
	initrd_addr = ALIGN_UP(misc_addr + 0x100000, 0x200000);
	bp_addr = misc_addr, cl_addr = misc_addr + PG, pg_addr = misc_addr + 3 * PG;
	misc = calloc(1, 4 * PG);
	memcpy(misc + 0x1f1, kernel + 0x1f1, hdr_end - 0x1f1);
	U8(misc, 0x210) = 0xff;				/* type_of_loader */
	U8(misc, 0x211) |= 0x01;			/* LOADED_HIGH */
	U32(misc, 0x218) = initrd_addr;			/* ramdisk_image */
	U32(misc, 0x21c) = ilen;			/* ramdisk_size */
	U32(misc, 0x228) = cl_addr;			/* cmd_line_ptr */
	U32(misc, 0x0c0) = initrd_addr >> 32;
	U32(misc, 0x0c8) = cl_addr >> 32;
	cl_len = strlen(cmdline);
	memcpy(misc + PG, cmdline, cl_len + 1);

	/* e820 from the top-level entries of /proc/iomem */
	f = fopen("/proc/iomem", "r");
	if (!f)
		die("/proc/iomem");
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char name[200];
		unsigned int type = 0, k = U8(misc, 0x1e8);

		if (line[0] == ' ' || sscanf(line, "%llx-%llx : %199[^\n]", &s, &e, name) != 3)
			continue;
		if (!strcmp(name, "System RAM"))
			type = 1;
		else if (!strcasecmp(name, "Reserved"))
			type = 2;
		else if (!strcmp(name, "ACPI Tables"))
			type = 3;
		else if (!strcmp(name, "ACPI Non-volatile Storage"))
			type = 4;
		if (!type || k >= 128)
			continue;
		U64(misc, 0x2d0 + 20 * k) = s;
		U64(misc, 0x2d0 + 20 * k + 8) = e - s + 1;
		U32(misc, 0x2d0 + 20 * k + 16) = type;
		U8(misc, 0x1e8) = k + 1;
	}
	fclose(f);
	if (!U8(misc, 0x1e8))
		die("no memory map in /proc/iomem");

	/* purgatory: movabs $bp, %rsi; movabs $entry, %rax; jmp *%rax */
	{
		unsigned char *p = (unsigned char *)misc + 3 * PG;
		uint64_t entry = load + 0x200;

		p[0] = 0x48, p[1] = 0xbe, memcpy(p + 2, &bp_addr, 8);
		p[10] = 0x48, p[11] = 0xb8, memcpy(p + 12, &entry, 8);
		p[20] = 0xff, p[21] = 0xe0;
	}

	seg[n++] = (struct kexec_segment){ kernel + setup, klen - setup, (void *)load,
					   ALIGN_UP(init_size > klen ? init_size : klen, PG) };
	seg[n++] = (struct kexec_segment){ misc, 4 * PG, (void *)misc_addr, 4 * PG };
	seg[n++] = (struct kexec_segment){ initrd, ilen, (void *)initrd_addr, ALIGN_UP(ilen, PG) };
	printf("kexec-boot: kernel at %#llx (init_size %#llx), boot_params at %#llx, initrd at %#llx "
	       "(%zu bytes), %u e820 entries\n", (unsigned long long)load,
	       (unsigned long long)init_size, (unsigned long long)bp_addr,
	       (unsigned long long)initrd_addr, ilen, U8(misc, 0x1e8));
	if (syscall(SYS_kexec_load, pg_addr, n, seg, KEXEC_ARCH_DEFAULT))
		die("kexec_load failed");
	if (argc > 4 && !strcmp(argv[4], "--load-only"))
		return 0;
	sync();
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
	die("reboot(LINUX_REBOOT_CMD_KEXEC) failed");
}
