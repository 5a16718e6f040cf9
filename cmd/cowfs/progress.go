package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progressInterval is the least time between two redraws of a progress bar
// (about 10 a second).
const progressInterval = 100 * time.Millisecond

// progressBar is a one-line progress bar on a terminal, redrawn in place
// with a carriage return and cleared by Done. A nil *progressBar draws
// nothing, so commands call its methods whether or not they show one.
type progressBar struct {
	mu       sync.Mutex
	w        io.Writer
	label    string // what is going on: "fsck", "scrub", "gc"
	unit     string // what is counted: "blobs"
	maxWidth int    // columns a line may take (terminal width less one)
	now      func() time.Time
	last     time.Time // of the last draw; zero before the first
	width    int       // columns of the line on screen, to clear it
}

// newProgress returns a progress bar on w if w is a terminal and quiet is
// false (commands pass their --json flag), and nil otherwise.
func newProgress(w io.Writer, label, unit string, quiet bool) *progressBar {
	if quiet {
		return nil
	}
	fd, ok := terminalFd(w)
	if !ok {
		return nil
	}
	p := newProgressOn(w, label, unit)
	if cols, _, err := term.GetSize(fd); err == nil && cols > 1 {
		p.maxWidth = cols - 1
	}
	return p
}

// newProgressOn returns a progress bar drawing on w, terminal or not.
func newProgressOn(w io.Writer, label, unit string) *progressBar {
	return &progressBar{w: w, label: label, unit: unit, maxWidth: 79, now: time.Now}
}

// terminalFd returns w's file descriptor if w is a terminal.
func terminalFd(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// barCells is the width of the bar itself.
const barCells = 24

// Update shows done out of total. Calls closer than progressInterval to the
// last draw are dropped, except the one that reaches total.
func (p *progressBar) Update(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.last.IsZero() && now.Sub(p.last) < progressInterval && done < total {
		return
	}
	p.last = now
	total = max(total, done, 0)
	done = max(done, 0)
	filled := barCells
	pct := int64(100)
	if total > 0 {
		filled = int(done * barCells / total)
		pct = done * 100 / total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", barCells-filled)
	p.drawLocked(fmt.Sprintf("%s [%s] %3d%% %d/%d %s", p.label, bar, pct, done, total, p.unit))
}

// Note shows a line of text instead of the bar (a phase with no count),
// at once.
func (p *progressBar) Note(text string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = p.now()
	p.drawLocked(p.label + ": " + text)
}

// drawLocked replaces the line on screen with line.
func (p *progressBar) drawLocked(line string) {
	if p.maxWidth > 0 && len(line) > p.maxWidth {
		line = line[:p.maxWidth]
	}
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n) + strings.Repeat("\b", n)
	}
	fmt.Fprint(p.w, "\r"+line+pad)
	p.width = len(line)
}

// Done clears the bar's line, leaving the cursor at its start, so that what
// the command prints next starts on a clean line.
func (p *progressBar) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.width)+"\r")
	}
	p.width = 0
	p.last = time.Time{}
}
