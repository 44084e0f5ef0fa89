#!/usr/bin/python3
"""Decodes the files the check-optee guest printed on serial0 (tools/optee/init.sh).

    decode-console.py SERIAL0_LOG OUT_DIR

Between "@@@FILE name" and "@@@END", lines of hex bytes (od -An -tx1) make up the file;
any other line (kernel messages) is skipped. Exits 1 when "@@@DONE" never came.
"""
import os
import re
import sys

log, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
hexline = re.compile(r'^[ 0-9a-f]*$')
name, data, done = None, bytearray(), False
with open(log, 'rb') as f:
    for raw in f:
        line = raw.decode('ascii', 'replace').strip('\r\n')
        if line.startswith('@@@FILE '):
            name, data = line[8:].strip(), bytearray()
        elif line.startswith('@@@END') and name:
            with open(os.path.join(out, name), 'wb') as o:
                o.write(data)
            name = None
        elif line.startswith('@@@DONE'):
            done = True
        elif line.startswith('@@@ERROR'):
            print('guest: ' + line[9:], file=sys.stderr)
        elif name and hexline.match(line):
            data += bytes.fromhex(line)
sys.exit(0 if done else 1)
