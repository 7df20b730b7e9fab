"""Runs a command on a pseudo-terminal and answers its prompts, for the passphrase tests.

    pty_drive.py ANSWERS_JSON [--until TEXT] -- COMMAND ARGS...

ANSWERS_JSON is a list of answers, each a list of byte values written after the next prompt
(a line ending in ": "); the value 4 alone is Ctrl-D. With --until, the command is sent SIGTERM
once its output contains TEXT. Prints one JSON object: {"exit": code or -signal, "output": text}.
Everything is bounded: 60 s in all.
"""

import json
import os
import pty
import select
import signal
import sys
import time


def main() -> None:
    answers = [bytes(a) for a in json.loads(sys.argv[1])]
    rest = sys.argv[2:]
    until = None
    if rest[0] == "--until":
        until, rest = rest[1], rest[2:]
    command = rest[1:]  # after "--"
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    output = b""
    answered = 0
    deadline = time.monotonic() + 60
    status = None
    stopped = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            output += chunk
        # A prompt waits for an answer: "...passphrase: " or "...passphrase (again): ".
        if answered < len(answers) and output.rstrip(b" ").endswith(b":"):
            # The prompt is printed before echo is turned off: answer as a person would, a
            # moment later, or the terminal may echo what a fast writer typed.
            time.sleep(0.3)
            os.write(fd, answers[answered])
            answered += 1
            output += b"\n"
        if until and not stopped and until.encode() in output:
            os.kill(pid, signal.SIGTERM)
            stopped = True
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
            break
    if status is None:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            output += chunk
    except OSError:
        pass
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"exit": code, "output": output.decode("utf-8", "replace")}))


if __name__ == "__main__":
    main()
