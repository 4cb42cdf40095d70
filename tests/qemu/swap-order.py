#!/usr/bin/python3
# Mutation for the order test: copy the filter core with its two first
# steps swapped, i.e. the dirty log cleared after the bits are read (what
# qemu_guest_free_page_hint() does).  The order case of QEMU's unit test
# test-free-page-bitmap must fail on the result.  Usage: swap-order.py CORE.c OUT.c
import sys

src = open(sys.argv[1]).read()
clear = "    if (ops->clear_log) {\n        ops->clear_log(opaque);\n    }\n"
anchor = "    /* 3. Drop the free pages. */\n"
if src.count(clear) != 1 or src.count(anchor) != 1:
    sys.exit("swap-order.py: the core no longer looks as expected; update me")
out = src.replace(clear, "").replace(anchor, clear + anchor)
open(sys.argv[2], "w").write(out)
