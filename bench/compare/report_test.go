package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("odd: got %v, want 2", got)
	}
	xs := []float64{4, 1, 3, 2}
	if got := Median(xs); got != 2.5 {
		t.Errorf("even: got %v, want 2.5", got)
	}
	if !reflect.DeepEqual(xs, []float64{4, 1, 3, 2}) {
		t.Errorf("Median reordered its input: %v", xs)
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("empty: got %v, want NaN", got)
	}
}

func TestFmtNum(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 0.000312: "0.000312", 0.0005: "0.000500", 2.31: "2.31", 2.3149: "2.31",
		9.996: "10.0", 99.96: "100", 1443: "1,443", 1234567: "1,234,567", -2.5: "-2.50",
	} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", v, got, want)
		}
	}
}

const cloneTest, readTest = "clone whole file", "fio seq read"

func sample() *Report {
	clone := func(target, param string, x, v float64, err string) Result {
		return Result{Test: cloneTest, Param: param, X: x, Target: target, Unit: "s",
			Runs: []float64{v, v}, Median: v, Err: err}
	}
	read := func(target string, v float64, note string) Result {
		return Result{Test: readTest, Target: target, Unit: "MiB/s", Higher: true, Median: v, Note: note}
	}
	return &Report{
		Command: "compare -quick",
		Started: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		Machine: map[string]string{"cpus": "8", "kernel": "6.8.0"},
		Mode:    "quick",
		Targets: []string{"btrfs", "xfs", "cowfs-api"},
		Results: []Result{
			clone("btrfs", "4 extents", 4, 0.000312, ""),
			clone("xfs", "4 extents", 4, 0.00131, ""),
			clone("cowfs-api", "4 extents", 4, 0.0005, ""),
			clone("btrfs", "65536 extents", 65536, 0, "FICLONERANGE: EINVAL at unaligned offsets"),
			clone("xfs", "65536 extents", 65536, 0.5, ""),
			clone("cowfs-api", "65536 extents", 65536, 0.0231, ""),
			read("btrfs", 1443, ""),
			read("xfs", 721.5, "fell back to copy_file_range"),
		},
		Skipped: []string{"cowfs-9p: no 9p kernel module"},
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := sample().Markdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"- Command: `compare -quick`\n",
		"- Date: 2025-03-04 05:06:07 UTC\n",
		"- Machine: cpus: 8, kernel: 6.8.0\n",
		"- Mode: quick\n",
		"## clone whole file\n\n| param | btrfs | xfs | cowfs-api |\n| --- | ---: | ---: | ---: |\n",
		"| 4 extents | 0.000312 s **best** | 0.00131 s (4.2× slower) | 0.000500 s (1.6× slower) |\n",
		"| 65536 extents | — | 0.500 s (21.6× slower) | 0.0231 s **best** |\n",
		"\n- btrfs (65536 extents): FICLONERANGE: EINVAL at unaligned offsets\n",
		"## fio seq read\n\n| btrfs | xfs | cowfs-api |\n| ---: | ---: | ---: |\n",
		"| 1,443 MiB/s **best** | 722 MiB/s (2.0× slower) | n/a |\n",
		"\n- xfs: fell back to copy_file_range\n",
		"## Skipped\n\n- cowfs-9p: no 9p kernel module\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q; got:\n%s", want, out)
		}
	}
	if strings.Index(out, "## clone whole file") > strings.Index(out, "## fio seq read") {
		t.Errorf("tests out of first-seen order:\n%s", out)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sample()
	r.Results = append(r.Results, Result{Test: readTest, Target: "cowfs-api", Unit: "MiB/s",
		Median: Median(nil), Err: "not mounted"})
	var b bytes.Buffer
	if err := r.JSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\n  \"command\": ") || !strings.Contains(b.String(), `"higher_is_better": true`) {
		t.Errorf("not indented JSON with the documented keys:\n%s", b.String())
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Started.Equal(r.Started) {
		t.Errorf("started %v, want %v", got.Started, r.Started)
	}
	got.Started = r.Started
	r.Results[len(r.Results)-1].Median = 0 // NaN is written as 0
	if !reflect.DeepEqual(&got, r) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, *r)
	}
}

// parseSVG decodes the whole of data as XML, returning element counts and all text.
func parseSVG(t *testing.T, data []byte) (map[string]int, string) {
	t.Helper()
	counts := map[string]int{}
	var text strings.Builder
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, data)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			counts[tok.Name.Local]++
		case xml.CharData:
			text.Write(tok)
		}
	}
	if counts["svg"] != 1 {
		t.Fatalf("want one <svg> element, got %d", counts["svg"])
	}
	return counts, text.String()
}

func TestCloneSVG(t *testing.T) {
	r := sample()
	r.Results = append(r.Results,
		Result{Test: cloneTest, Param: "4 extents", X: 4, Target: "<&>", Unit: "s", Median: 0.002},
		Result{Test: cloneTest, Param: "64 extents", X: 64, Target: "zero", Unit: "s", Median: 0},
		Result{Test: readTest, X: 1, Target: "other", Unit: "MiB/s", Median: 5})
	var b bytes.Buffer
	if err := r.CloneSVG(&b, cloneTest, "Clone <whole> file & co"); err != nil {
		t.Fatal(err)
	}
	counts, text := parseSVG(t, b.Bytes())
	// btrfs, xfs, cowfs-api, <&>; not "zero" (no positive value) nor "other" (another test).
	if counts["polyline"] != 4 {
		t.Errorf("got %d polylines, want 4", counts["polyline"])
	}
	for _, want := range []string{"Clone <whole> file & co", "<&>", "extents", "100 µs", "1 s", "10⁴"} {
		if !strings.Contains(text, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}
	if strings.Contains(text, "zero") || strings.Contains(text, "other") {
		t.Errorf("SVG shows a target without positive data for this test")
	}

	b.Reset()
	if err := r.CloneSVG(&b, "no such test", "empty"); err != nil {
		t.Fatal(err)
	}
	if counts, _ := parseSVG(t, b.Bytes()); counts["polyline"] != 0 {
		t.Errorf("empty plot has polylines")
	}
}

func TestBarsSVG(t *testing.T) {
	r := sample()
	r.Results = append(r.Results,
		Result{Test: readTest, Target: "cowfs-api", Unit: "MiB/s", Higher: true, Err: "not <mounted>"},
		Result{Test: readTest, Target: "<&>", Unit: "MiB/s", Higher: true, Median: 10})
	var b bytes.Buffer
	if err := r.BarsSVG(&b, []string{readTest}, "Read & write"); err != nil {
		t.Fatal(err)
	}
	counts, text := parseSVG(t, b.Bytes())
	if counts["rect"] != 3 { // btrfs, xfs, <&>; cowfs-api is skipped
		t.Errorf("got %d rects, want 3", counts["rect"])
	}
	for _, want := range []string{"Read & write", "<&>", "1,443 MiB/s", "skipped", "not <mounted>", "higher is better"} {
		if !strings.Contains(text, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}

	b.Reset()
	if err := r.BarsSVG(&b, []string{cloneTest}, "clone"); err != nil {
		t.Fatal(err)
	}
	counts, text = parseSVG(t, b.Bytes())
	if counts["rect"] != 5 { // two Params × three targets, one with Err
		t.Errorf("got %d rects, want 5", counts["rect"])
	}
	if !strings.Contains(text, "clone whole file — 65536 extents") {
		t.Errorf("SVG lacks the Param group label")
	}

	if err := r.BarsSVG(io.Discard, []string{readTest, cloneTest}, "mixed"); err == nil {
		t.Errorf("mixed units: no error")
	}
}

// TestParamlessErrorFillsEveryRow: a result without a param (a target the
// whole test does not apply to) shows in every row, not a row of its own.
func TestParamlessErrorFillsEveryRow(t *testing.T) {
	r := &Report{Targets: []string{"a", "b"}, Results: []Result{
		{Test: "t", Param: "p1", Target: "a", Unit: "s", Runs: []float64{1}, Median: 1},
		{Test: "t", Param: "p2", Target: "a", Unit: "s", Runs: []float64{2}, Median: 2},
		{Test: "t", Target: "b", Unit: "s", Err: "does not apply"},
	}}
	var b strings.Builder
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, row := range []string{"| p1 | 1.00 s **best** | — |", "| p2 | 2.00 s **best** | — |"} {
		if !strings.Contains(md, row) {
			t.Errorf("no row %q in:\n%s", row, md)
		}
	}
	if strings.Count(md, "\n| ") != 4 { // the head, its rule and two rows
		t.Errorf("want a head and 2 rows:\n%s", md)
	}
}
