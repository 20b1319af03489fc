#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs one libFuzzer target of tests/fuzz (issue 12, "Keep it fixed").

  run-fuzz.py fuzz FUZZER SEED_DIR ARTIFACT_DIR [libFuzzer flags...]
      fuzz for $CONNPID_FUZZ_SECONDS (default 20) seconds, starting from a
      copy of SEED_DIR (the source tree's corpus is never written)
  run-fuzz.py regress FUZZER SEED_DIR ARTIFACT_DIR [libFuzzer flags...]
      run every seed once
  run-fuzz.py skip REASON
      exit 77 saying why (no clang that builds libFuzzer targets)

Any crash, sanitizer report, leak, timeout or out-of-memory fails (exit 1):
the input is printed in hex and copied to ARTIFACT_DIR."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile


def fuzzer_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                 "abort_on_error=0", "detect_leaks=1"]))
    env["UBSAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("UBSAN_OPTIONS", ""),
                                                  "halt_on_error=1", "print_stacktrace=1"]))
    return env


def report(name, out, work, artifact_dir, rc, budget_hit):
    arts = sorted(a for pat in ("crash-*", "leak-*", "timeout-*", "oom-*")
                  for a in glob.glob(os.path.join(work, pat)))
    for a in arts:
        with open(a, "rb") as f:
            data = f.read()
        os.makedirs(artifact_dir, exist_ok=True)
        dest = os.path.join(artifact_dir, "%s-%s" % (name, os.path.basename(a)))
        shutil.copy(a, dest)
        print("artifact %s (saved as %s): %s" % (os.path.basename(a), dest, data.hex()), flush=True)
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
    rate = re.findall(r"stat::average_exec_per_sec:\s*(\d+)", out)
    if execs:
        print("%s: %s executions, %s exec/s" % (name, execs[-1], rate[-1] if rate else "?"), flush=True)
    bad = rc != 0 or arts or "runtime error:" in out or "ERROR: AddressSanitizer" in out \
        or "ERROR: LeakSanitizer" in out or budget_hit
    if bad:
        print("FAIL: %s: fuzzer exit %s, %d artifact(s)%s" % (name, rc, len(arts),
              ", no end within the time budget" if budget_hit else ""), flush=True)
        return 1
    return 0


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "skip":
        print("SKIP: " + " ".join(sys.argv[2:]), flush=True)
        return 77
    mode, fuzzer, seeds, artifact_dir = sys.argv[1:5]
    extra = sys.argv[5:]
    name = os.path.basename(fuzzer)
    seed_files = sorted(p for p in glob.glob(os.path.join(seeds, "*")) if os.path.isfile(p))
    if not seed_files:
        print("FAIL: no seed inputs in %s" % seeds, flush=True)
        return 1
    work = tempfile.mkdtemp(prefix="cpid-fuzz-%s-" % name)
    try:
        common = ["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
                  "-artifact_prefix=%s/" % work] + extra
        if mode == "fuzz":
            seconds = int(os.environ.get("CONNPID_FUZZ_SECONDS", "20"))
            corpus = os.path.join(work, "corpus")
            shutil.copytree(seeds, corpus)
            args = [fuzzer, "-max_total_time=%d" % seconds] + common + [corpus]
            budget = seconds + 120
        elif mode == "regress":
            args = [fuzzer] + common + seed_files
            budget = 60 + 5 * len(seed_files)
        else:
            print("usage: run-fuzz.py fuzz|regress FUZZER SEED_DIR ARTIFACT_DIR [flags]", file=sys.stderr)
            return 2
        print("+", " ".join(args), flush=True)
        budget_hit = False
        try:
            r = subprocess.run(args, env=fuzzer_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=budget)
            out, rc = r.stdout.decode("utf-8", "replace"), r.returncode
        except subprocess.TimeoutExpired as e:
            out, rc, budget_hit = (e.stdout or b"").decode("utf-8", "replace"), -1, True
        print(out[-12000:], flush=True)
        if mode == "regress" and rc == 0:
            ran = len(re.findall(r"^Executed .* in \d+ ms", out, re.M))
            if ran != len(seed_files):
                print("FAIL: ran %d of %d seeds" % (ran, len(seed_files)), flush=True)
                return 1
            print("%s: %d seeds passed" % (name, ran), flush=True)
        return report(name, out, work, artifact_dir, rc, budget_hit)
    finally:
        shutil.rmtree(work, ignore_errors=True)


sys.exit(main())
