package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one measurement of one test on one target.
type Result struct {
	Test   string    `json:"test"`            // e.g. "clone whole file", "fio seq read"
	Param  string    `json:"param,omitempty"` // e.g. "65536 extents", "unaligned"
	X      float64   `json:"x,omitempty"`     // numeric parameter for line plots (e.g. extent count); 0 if none
	Target string    `json:"target"`
	Unit   string    `json:"unit"` // "s", "ms", "µs", "MiB/s", "ops/s", "MiB", "bytes"
	Higher bool      `json:"higher_is_better"`
	Runs   []float64 `json:"runs,omitempty"` // every run's figure
	Median float64   `json:"median"`
	Note   string    `json:"note,omitempty"`  // e.g. "FICLONERANGE: EINVAL, fell back to copy_file_range"
	Err    string    `json:"error,omitempty"` // set when the test could not run on this target (skipped or failed): why
}

// ok reports whether the result has a usable median.
func (res *Result) ok() bool {
	return res.Err == "" && !math.IsNaN(res.Median) && !math.IsInf(res.Median, 0)
}

// Median returns the median of xs (mean of the two middle ones for an even count); NaN for none.
func Median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Report is a whole run.
type Report struct {
	Command string            `json:"command"`
	Started time.Time         `json:"started"`
	Machine map[string]string `json:"machine"` // e.g. "cpus", "cpu", "kernel", "memory", "go"
	Mode    string            `json:"mode"`    // "full", "quick" or "tiny"
	Targets []string          `json:"targets"` // column order
	Results []Result          `json:"results"`
	Skipped []string          `json:"skipped,omitempty"` // whole targets or tests skipped, with why
}

// columns returns r.Targets followed by any other target that has results, in first-seen order.
func (r *Report) columns() []string {
	cols := slices.Clone(r.Targets)
	for _, res := range r.Results {
		if !slices.Contains(cols, res.Target) {
			cols = append(cols, res.Target)
		}
	}
	return cols
}

// tests returns the distinct Test names in first-seen order.
func (r *Report) tests() []string {
	var ts []string
	for _, res := range r.Results {
		if !slices.Contains(ts, res.Test) {
			ts = append(ts, res.Test)
		}
	}
	return ts
}

// params returns the distinct Param values of test in first-seen order.
func (r *Report) params(test string) []string {
	var ps []string
	for _, res := range r.Results {
		if res.Test == test && !slices.Contains(ps, res.Param) {
			ps = append(ps, res.Param)
		}
	}
	if len(ps) > 1 {
		// A result without a param applies to every row (find).
		ps = slices.DeleteFunc(ps, func(p string) bool { return p == "" })
	}
	return ps
}

// find returns the first result for (test, param, target), or nil; a
// result of the test and target without a param stands for every param.
func (r *Report) find(test, param, target string) *Result {
	var any *Result
	for i := range r.Results {
		res := &r.Results[i]
		if res.Test != test || res.Target != target {
			continue
		}
		if res.Param == param {
			return res
		}
		if res.Param == "" && any == nil {
			any = res
		}
	}
	return any
}

// Markdown writes the report: a header (command, date, machine, mode), then one table per Test
// (rows = Param values in first-seen order, or a single row if no Param; columns = Targets in
// order), each cell "median unit" formatted with 3 significant digits and thousands separators
// (e.g. "0.000312 s", "1,443 MiB/s", "2.31 ms"), followed by the ratio to the best peer in that row
// ("best" in bold for the best cell, otherwise e.g. "(4.2× slower)" for a cell 4.2 times worse
// than the best, computed as value/best for lower-is-better and best/value for higher-is-better);
// a cell of a Result with Err shows "—" and the Err goes in a footnote list under the table
// ("btrfs: FICLONERANGE: EINVAL at unaligned offsets"); Notes also as footnotes.
// Targets with no result at all for a test get "n/a". Then the Skipped list.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Benchmark comparison\n\n")
	if r.Command != "" {
		fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	}
	if !r.Started.IsZero() {
		fmt.Fprintf(&b, "- Date: %s\n", r.Started.Format("2006-01-02 15:04:05 MST"))
	}
	if len(r.Machine) > 0 {
		keys := make([]string, 0, len(r.Machine))
		for k := range r.Machine {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + r.Machine[k]
		}
		fmt.Fprintf(&b, "- Machine: %s\n", strings.Join(parts, ", "))
	}
	if r.Mode != "" {
		fmt.Fprintf(&b, "- Mode: %s\n", r.Mode)
	}
	cols := r.columns()
	for _, test := range r.tests() {
		fmt.Fprintf(&b, "\n## %s\n\n", mdEscape(test))
		params := r.params(test)
		withParam := len(params) > 1 || params[0] != ""
		var head, sep []string
		if withParam {
			head, sep = append(head, "param"), append(sep, "---")
		}
		for _, c := range cols {
			head, sep = append(head, mdEscape(c)), append(sep, "---:")
		}
		b.WriteString("| " + strings.Join(head, " | ") + " |\n")
		b.WriteString("| " + strings.Join(sep, " | ") + " |\n")
		var notes []string
		for _, p := range params {
			var cells []string
			if withParam {
				cells = append(cells, mdEscape(p))
			}
			best := r.best(test, p, cols)
			for _, c := range cols {
				res := r.find(test, p, c)
				cells = append(cells, mdEscape(cell(res, best)))
				if res == nil {
					continue
				}
				who := c
				if withParam {
					who += " (" + p + ")"
				}
				if res.Err != "" {
					notes = append(notes, who+": "+res.Err)
				}
				if res.Note != "" {
					notes = append(notes, who+": "+res.Note)
				}
			}
			b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		}
		if len(notes) > 0 {
			b.WriteString("\n")
			for _, n := range notes {
				b.WriteString("- " + oneLine(n) + "\n")
			}
		}
	}
	if len(r.Skipped) > 0 {
		b.WriteString("\n## Skipped\n\n")
		for _, s := range r.Skipped {
			b.WriteString("- " + oneLine(s) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// best returns the best usable result of a row, or nil.
func (r *Report) best(test, param string, cols []string) *Result {
	var best *Result
	for _, c := range cols {
		res := r.find(test, param, c)
		if res == nil || !res.ok() {
			continue
		}
		if best == nil || (res.Higher && res.Median > best.Median) || (!res.Higher && res.Median < best.Median) {
			best = res
		}
	}
	return best
}

// cell formats one table cell given the best result of its row.
func cell(res, best *Result) string {
	switch {
	case res == nil:
		return "n/a"
	case res.Err != "":
		return "—"
	case !res.ok():
		return "n/a"
	}
	s := fmtValue(res.Median, res.Unit)
	if res.Median == best.Median {
		return s + " **best**"
	}
	ratio := res.Median / best.Median
	if res.Higher {
		ratio = best.Median / res.Median
	}
	if math.IsInf(ratio, 0) || math.IsNaN(ratio) {
		return s
	}
	word := "slower"
	switch res.Unit {
	case "s", "ms", "µs", "us", "ns", "MiB/s", "ops/s":
	default:
		word = "worse"
	}
	r := fmtNum(ratio)
	if ratio < 10 {
		r = strconv.FormatFloat(ratio, 'f', 1, 64)
	}
	return fmt.Sprintf("%s (%s× %s)", s, r, word)
}

// fmtValue formats v with its unit, e.g. "2.31 ms".
func fmtValue(v float64, unit string) string {
	if unit == "" {
		return fmtNum(v)
	}
	return fmtNum(v) + " " + unit
}

// fmtNum formats v with 3 significant digits (whole numbers from 100 up) and thousands
// separators: "0.000312", "2.31", "1,443".
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if v == 0 {
		return "0"
	}
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	var s string
	if v >= 100 {
		s = strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	} else {
		v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
		dec := max(2-int(math.Floor(math.Log10(v))), 0)
		s = strconv.FormatFloat(v, 'f', dec, 64)
	}
	return sign + commas(s)
}

// commas inserts thousands separators into a non-negative decimal number.
func commas(s string) string {
	intPart, frac, _ := strings.Cut(s, ".")
	for i := len(intPart) - 3; i > 0; i -= 3 {
		intPart = intPart[:i] + "," + intPart[i:]
	}
	if frac != "" {
		intPart += "." + frac
	}
	return intPart
}

func mdEscape(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// JSON writes the report as indented JSON. Non-finite medians (NaN for no runs) are written
// as 0 and non-finite runs are dropped, since JSON cannot represent them.
func (r *Report) JSON(w io.Writer) error {
	c := *r
	c.Results = make([]Result, len(r.Results))
	for i, res := range r.Results {
		if math.IsNaN(res.Median) || math.IsInf(res.Median, 0) {
			res.Median = 0
		}
		res.Runs = slices.DeleteFunc(slices.Clone(res.Runs), func(v float64) bool {
			return math.IsNaN(v) || math.IsInf(v, 0)
		})
		c.Results[i] = res
	}
	data, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}
