#!/usr/bin/env python3
"""Heap allocations per request in a callgrind dump: the calls into the allocator's entry points
(Rust's __rust_alloc / __rust_alloc_zeroed / __rust_realloc, C's malloc / calloc / realloc),
summed over every caller, divided by the request count. Used by bench/instructions.sh.

    alloc_calls.py CALLGRIND_FILE REQUESTS
"""
import re
import sys

ENTRY = re.compile(r"(^|::)(__rust_alloc|__rust_alloc_zeroed|__rust_realloc|malloc|calloc|realloc)$")


def main(path, requests):
    names = {}  # callgrind compresses names: "(id) name" once, then "(id)"
    callee = None
    calls = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("cfn="):
                m = re.match(r"\((\d+)\)(?: (.*))?", line[4:].strip())
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                callee = names.get(m.group(1), "")
            elif line.startswith("fn="):
                m = re.match(r"\((\d+)\)(?: (.*))?", line[3:].strip())
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and callee is not None:
                if ENTRY.search(callee):
                    calls += int(line[6:].split()[0])
                callee = None
    print(f"{calls / requests:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
