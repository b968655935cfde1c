#!/usr/bin/env python3
"""Ctrl-C during a step, N times: what is left of the lab each time.

Usage: docs/bench/sigint.py PGLAB_BIN STEP_DONE RUNS
Starts `pglab run tutorial`, waits until STEP_DONE has finished (so the
next step runs), sends SIGINT, then counts the lab's containers, networks,
volumes and state dir that are still there. Prints one line per run.
"""
import json, os, signal, subprocess, sys, tempfile, threading

def left(lab):
    def count(kind):
        out = subprocess.run(["docker", kind, "ls", "-aq" if kind == "container" else "-q", "--filter", f"label=pglab.lab={lab}"],
                             capture_output=True, text=True).stdout.split()
        return len(out)
    return count("container"), count("network"), count("volume"), os.path.exists(f"/tmp/pglab/{lab}")

def once(binary, after):
    reports = tempfile.mkdtemp()
    p = subprocess.Popen([binary, "run", "tutorial", "--transcript", reports], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if f" {after} " in line and " ok " in line.replace("ok  ", " ok "):
            break
    p.send_signal(signal.SIGINT)
    drain = threading.Thread(target=p.stderr.read)
    drain.start()
    p.stdout.read()
    code = p.wait()
    drain.join()
    reps = [f for f in os.listdir(reports) if f.endswith(".json")]
    if not reps:
        return code, "?", [], (None,)
    r = json.load(open(os.path.join(reports, reps[0])))
    stopped = [s["id"] for s in r["steps"] if s["status"] == "interrupted"]
    return code, r["lab"], stopped, left(r["lab"])

if __name__ == "__main__":
    binary, after, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    total = 0
    for i in range(1, runs + 1):
        code, lab, stopped, (c, n, v, d) = once(binary, after)
        total += c + n + v + int(d)
        print(f"run {i}: after {after}: exit {code}, lab {lab}, interrupted {','.join(stopped) or '-'}; left: {c} containers, {n} networks, {v} volumes, state dir {'yes' if d else 'no'}", flush=True)
    print(f"total resources left over {runs} runs: {total}")
