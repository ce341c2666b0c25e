"""A progress line that does not flood a terminal: on a TTY it redraws one line in place at most
ten times a second; elsewhere (a log file, CI) it prints a line at each tenth of the work. Used by
training, downloads and the experiments. Silence it with ``progress=False`` or ``PYNET_PROGRESS=0``.
"""
import os
import sys
import time


def progress_enabled(progress):
    """Resolve a ``progress`` argument: None means "on unless PYNET_PROGRESS=0"."""
    if progress is None:
        return os.environ.get("PYNET_PROGRESS", "1") not in ("0", "false", "no", "off")
    return bool(progress)


def format_seconds(s):
    """A duration for people: 12.3s, 4m05s, 2h07m."""
    if s < 60:
        return "%.1fs" % s
    m, s = divmod(int(round(s)), 60)
    return "%dm%02ds" % (m, s) if m < 60 else "%dh%02dm" % divmod(m, 60)


class Progress:
    """``Progress(total, label)``; call ``update(done, **fields)`` as work completes and
    ``close()`` at the end. Fields are shown as ``name value`` after the count. With
    ``tenths=False`` nothing is printed when the stream is not a terminal (for callers that print
    their own summary line instead)."""

    def __init__(self, total, label, unit="it", enabled=True, stream=None, interval=0.1, tenths=True):
        self.total, self.label, self.unit = total, label, unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self.tenths = tenths
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.next_tenth = 1
        self.done = 0
        self.fields = {}
        self.width = 0

    def update(self, done, **fields):
        self.done = done
        self.fields.update(fields)
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self.last_draw >= self.interval or done >= self.total:
                self._draw(now, end="")
        elif self.tenths and self.total and done * 10 >= self.next_tenth * self.total:
            while done * 10 >= self.next_tenth * self.total:
                self.next_tenth += 1
            self._draw(now, end="\n")

    def close(self, quiet=False, **fields):
        """Finish the line; ``quiet=True`` erases it instead (the caller prints a summary)."""
        self.fields.update(fields)
        if self.enabled and self.tty:
            if quiet:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
            else:
                self._draw(time.perf_counter(), end="\n")

    def elapsed(self):
        return time.perf_counter() - self.start

    def _draw(self, now, end):
        self.last_draw = now
        elapsed = now - self.start
        parts = ["%s %*d/%d" % (self.label, len(str(self.total)), self.done, self.total)]
        if self.total:
            parts.append("%3d%%" % (100 * self.done // self.total))
        for name, value in self.fields.items():
            parts.append("%s %s" % (name, ("%.4g" % value) if isinstance(value, float) else value))
        if elapsed > 0 and self.done:
            rate = self.done / elapsed
            parts.append(("%.0f %s/s" % (rate, self.unit)) if rate >= 10 else ("%.2f %s/s" % (rate, self.unit)))
            if self.done < self.total:
                parts.append("eta " + format_seconds((self.total - self.done) / rate))
            else:
                parts.append(format_seconds(elapsed))
        line = "  ".join(parts)
        if self.tty:
            pad = max(0, self.width - len(line))
            self.width = len(line)
            self.stream.write("\r" + line + " " * pad + end)
        else:
            self.stream.write(line + end)
        self.stream.flush()

