"""Drives trawl's SQL shell through a pseudo-terminal, as a person at a terminal would.

  pty_shell.py TRAWL LAKE HISTORY DELETED

TRAWL is the binary, LAKE a lake holding a store named demo, its query log on and a saved query
`deletes` (`$name`: the events of that name, counted as n), HISTORY the history file to use,
DELETED the number of DeleteTrail events in it (found with `trawl query`). Exits non-zero, with
the screen so far, when the shell does not answer as expected within 30 seconds.
"""
import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
ROWS, COLUMNS = 24, 100


class Terminal:
    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, env)
        # A terminal of 24 rows of 100 columns: what tables are fitted to, and paged past.
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.screen = b""  # everything read, escape sequences removed
        self.seen = 0  # how much of it expectations have consumed

    def type(self, text):
        os.write(self.fd, text.encode())

    def expect(self, needle, timeout=30):
        want = needle.encode()
        end = time.time() + timeout
        while True:
            at = self.screen.find(want, self.seen)
            if at >= 0:
                self.seen = at + len(want)
                return
            if time.time() > end:
                sys.exit(f"timed out waiting for {needle!r}; screen:\n{self.screen[self.seen:].decode(errors='replace')}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    sys.exit(f"the shell ended while waiting for {needle!r}; screen:\n{self.screen.decode(errors='replace')}")
                self.screen += ANSI.sub(b"", chunk)

    def since(self, start):
        """What the screen showed from `start` (a former `seen`) to what was last expected."""
        return self.screen[start:self.seen].decode(errors="replace")

    def wait(self):
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def main(trawl, lake, history, deleted):
    # The pager marks each line it shows.
    env = dict(os.environ, TERM="xterm", TRAWL_HISTORY=history, TRAWL_LAKE=lake, PAGER="sed s/^/PAGED:/")
    t = Terminal([trawl], env)
    t.expect("trawl> ")

    # \d lists the store; \d STORE shows nested columns.
    t.type("\\d\r")
    t.expect("demo\t")
    t.expect("trawl> ")
    t.type("\\d demo\r")
    t.expect("mfaauthenticated")
    t.expect("trawl> ")

    # A statement over three lines runs at its ';'.
    t.type("SELECT count(*) AS deleted\r")
    t.type("FROM demo\r")
    t.type("WHERE eventName = 'DeleteTrail';\r")
    t.expect("| deleted |")
    t.expect(f"| {deleted} ")
    t.expect("events matched")
    t.expect("trawl> ")

    # Tab completes a nested column path: the result's header is the completed field's name.
    t.type("SELECT userIdentity.sessionc\t")
    time.sleep(0.3)
    t.type(".attributes.mfaa\t")
    time.sleep(0.3)
    t.type(" FROM demo LIMIT 1;\r")
    t.expect("| mfaauthenticated |")
    t.expect("trawl> ")

    # Ctrl-C cancels a long query (after its spinner shows) and the session goes on.
    t.type("SELECT sum(length(a.eventid || b.eventid || c.eventid || d.eventid)) "
           "FROM demo a, demo b, demo c, demo d;\r")
    t.expect("Ctrl-C cancels")
    t.type("\x03")
    t.expect("query cancelled")
    t.expect("trawl> ")
    t.type("SELECT 6 * 7 AS answer;\r")
    t.expect("| 42 ")
    t.expect("trawl> ")

    # Errors name the closest column; \set fills placeholders; \q quits.
    t.type("SELECT eventnme FROM demo;\r")
    t.expect("did you mean 'eventname'?")
    t.expect("trawl> ")
    t.type("\\set STORE demo\r")
    t.expect("trawl> ")
    t.type("SELECT count(*) AS n FROM $STORE WHERE eventName = 'DeleteTrail';\r")
    t.expect(f"| {deleted} ")
    t.expect("trawl> ")
    # Tab on an ambiguous prefix completes what the choices share and lists them, as bash does.
    t.type("SELECT eventt\t")
    time.sleep(0.3)
    t.type("\t")
    t.expect("eventtime")
    t.expect("eventtype")
    time.sleep(0.3)
    t.type("ime FROM demo LIMIT 0;\r")
    t.expect("| eventtime |")
    t.expect("(0 rows)")
    t.expect("trawl> ")

    # A row wider than the terminal is shown a line per column (\x auto, the default); \x off
    # keeps the table; NULL is shown as NULL.
    t.type("SELECT eventid, eventname, useridentity, requestparameters, errorcode FROM demo "
           "WHERE eventName = 'DeleteTrail' LIMIT 1;\r")
    t.expect("-[ RECORD 1 ]")
    t.expect("eventname         | DeleteTrail")
    t.expect("(1 row)")
    t.expect("trawl> ")
    t.type("\\x off\r")
    t.expect("expanded display is off")
    t.type("SELECT eventname, errorcode FROM demo WHERE eventName = 'DeleteTrail' LIMIT 1;\r")
    t.expect("| DeleteTrail | NULL      |")
    t.expect("trawl> ")

    # A table wider than the terminal (\x off) is fitted to it: the widest columns are cut, and
    # their cells marked; nested values are compact JSON without their null fields.
    start = t.seen
    t.type("SELECT eventname, useridentity, requestparameters FROM demo WHERE eventName = 'DeleteTrail' LIMIT 1;\r")
    t.expect("| DeleteTrail |")
    t.expect("(1 row)")
    shown = t.since(start)
    assert "…" in shown and '{"' in shown and ':null' not in shown, shown
    lines = [line for line in shown.splitlines() if line.startswith(("|", "+"))]
    assert lines and all(len(line) <= COLUMNS for line in lines), shown
    t.expect("trawl> ")

    # A table longer than the terminal goes through $PAGER; \pager off prints it directly.
    t.type("SELECT eventid AS paged FROM demo LIMIT 30;\r")
    t.expect("PAGED:| paged")
    t.expect("PAGED:(30 rows)")
    t.expect("trawl> ")
    t.type("\\pager off\r")
    t.expect("pager is off")
    t.expect("trawl> ")
    start = t.seen
    t.type("SELECT eventid AS direct FROM demo LIMIT 30;\r")
    t.expect("| direct")
    t.expect("(30 rows)")
    assert "PAGED:" not in t.since(start), t.since(start)
    t.expect("trawl> ")

    # \s lists the lake's saved queries; \s NAME KEY=VALUE shows its SQL and runs it.
    t.type("\\s\r")
    t.expect("deletes")
    t.expect("$name")
    t.expect("trawl> ")
    t.type("\\s deletes name=DeleteTrail\r")
    t.expect("WHERE eventName = $name;")
    t.expect(f"| {deleted} ")
    t.expect("trawl> ")

    # \history: the statements just run, from the lake's query log, with their statistics.
    # A record at a time (\x on), so that no cell is cut.
    t.type("\\x on\r")
    t.expect("expanded display is on")
    t.type("\\history 2\r")
    t.expect("source         | shell")
    t.expect("outcome        | ok")
    t.expect("sql            | SELECT eventid AS direct FROM demo LIMIT 30")
    t.expect("WHERE eventName = $name")
    t.expect("(2 rows)")
    t.expect("trawl> ")
    t.type("\\x auto\r")
    t.expect("expanded display is auto")

    # \lookup: Event history over $EDS_ID's store (wider than the terminal: a record at a time).
    t.type("\\lookup EventName=DeleteTrail\r")
    t.expect("EventName   | DeleteTrail")
    t.expect(f"({deleted} row")
    t.expect("trawl> ")

    # \examples N shows the example's SQL and puts it in history: the up arrow recalls it.
    t.type("\\examples 1\r")
    t.expect("FROM $EDS_ID")
    t.expect("trawl> ")
    t.type("\x1b[A")
    t.expect("eventName = 'DeleteBucket'")
    t.type("\r")
    t.expect("events matched")
    t.expect("trawl> ")
    t.type("\\q\r")
    code = t.wait()
    assert code == 0, f"exit code {code}"

    saved = open(history).read()
    assert "WHERE eventName = 'DeleteTrail';" in saved, saved
    assert "eventName = 'DeleteBucket'" in saved, saved
    print("shell: \\d, multi-line, completion, Ctrl-C, suggestions, \\set, \\x, width fitting, pager, \\s, "
          "\\history, \\lookup, \\examples, history: ok")


if __name__ == "__main__":
    main(*sys.argv[1:5])
