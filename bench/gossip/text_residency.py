#!/usr/bin/env python3
"""Which code of a running node is resident, by component.

    bench/gossip/text_residency.py PID [BINARY]

Reads the .text section of BINARY (default build/node/peergrid) as mapped
by process PID, asks /proc/PID/pagemap which of its pages are resident, and
splits each page among the components whose functions it holds (by the
demangled names from `nm`, in proportion to their bytes). Prints, for each
component, the resident kilobytes against the kilobytes of code it has in
the binary. Resident file pages count towards VmRSS whether the node ran
the code or the kernel's fault-around mapped it with a neighbour.

Run as root (pagemap hides frame numbers, not the present bit, from others,
but reading another process's pagemap needs the right to ptrace it).
"""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys

# First match wins: the xDS family before gRPC core, whose names it shares.
COMPONENTS = [
    ("grpc xds/grpclb/rls",
     r"xds|Xds|envoy|udpa|grpc_lb|GrpcLb|grpclb|Rls|rls|RingHash|ring_hash|"
     r"OutlierDetection|PriorityLb|WeightedTarget|CdsLb"),
    ("upb", r"upb"),
    ("openssl",
     r"^(SSL|EVP|BN_|bn_|EC_|ec_|RSA|rsa|X509|x509|ASN1|asn1|OPENSSL|CRYPTO|"
     r"ossl|OSSL|ERR_|BIO|PEM|tls|dtls|sha|SHA|aes|AES|chacha|poly1305|HMAC)"),
    ("c-ares", r"^ares"),
    ("re2", r"re2::"),
    ("grpc security", r"tsi_|Tsi|[Ss]ecurity|[Cc]redentials|alts|Alts|ssl"),
    ("grpc event engine", r"grpc_event_engine"),
    ("grpc core",
     r"grpc_core|^grpc_|^gpr_|chttp2|hpack|Hpack|^cq_|pollset|epoll|tcp_"),
    ("grpc++", r"^grpc::"),
    ("protobuf", r"google::protobuf"),
    ("abseil", r"absl::"),
    ("peergrid", r"peergrid"),
    ("libstdc++ templates", r"^std::|__gnu_cxx|operator"),
]


def component(name):
    for label, pattern in COMPONENTS:
        if re.search(pattern, name):
            return label
    return "other"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    binary = os.path.realpath(sys.argv[2] if len(sys.argv) > 2
                              else "build/node/peergrid")
    base = None
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == binary and \
                    int(fields[2], 16) == 0:
                base = int(fields[0].split("-")[0], 16)
                break
    if base is None:
        sys.exit(f"{binary} is not mapped by process {pid}")
    # A position-dependent executable is mapped at its link addresses.
    elf_type = subprocess.check_output(["readelf", "-h", binary]).decode()
    if "EXEC (" in elf_type:
        base = 0

    text = None
    for line in subprocess.check_output(["readelf", "-SW", binary]).decode() \
            .splitlines():
        match = re.match(
            r"\s*\[\s*\d+\]\s+\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+"
            r"([0-9a-f]+)", line)
        if match:
            text = (int(match.group(1), 16), int(match.group(2), 16))
    symbols = []
    for line in subprocess.check_output(
            ["nm", "-C", "-n", "-S", "--defined-only", binary]) \
            .decode(errors="replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            symbols.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    starts = [s[0] for s in symbols]

    resident = collections.Counter()
    total = collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        start, size = text
        for page in range(start // 4096, (start + size + 4095) // 4096):
            pagemap.seek(((base + page * 4096) // 4096) * 8)
            present = struct.unpack("Q", pagemap.read(8))[0] >> 63
            low, high = page * 4096, page * 4096 + 4096
            share = collections.Counter()
            i = max(bisect.bisect_right(starts, low) - 1, 0)
            while i < len(symbols) and symbols[i][0] < high:
                address, length, name = symbols[i]
                overlap = min(address + length, high) - max(address, low)
                if overlap > 0:
                    share[component(name)] += overlap
                i += 1
            in_page = sum(share.values()) or 1
            for label, count in share.items():
                total[label] += 4 * count / in_page
                if present:
                    resident[label] += 4 * count / in_page
    for label, kb in resident.most_common():
        if kb < 0.5:
            continue
        print(f"{label:22s} {kb:7.0f} KB resident of {total[label]:7.0f} KB")
    print(f"{'all of .text':22s} {sum(resident.values()):7.0f} KB resident "
          f"of {sum(total.values()):7.0f} KB")


if __name__ == "__main__":
    main()
