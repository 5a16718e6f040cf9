package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

const svgWidth = 800

// knownColors gives each usual target a fixed, distinct color.
var knownColors = map[string]string{
	"btrfs":      "#1f77b4",
	"xfs":        "#ff7f0e",
	"tmpfs":      "#2ca02c",
	"loopback":   "#7f7f7f",
	"cowfs-api":  "#d62728",
	"cowfs-fuse": "#9467bd",
	"cowfs-9p":   "#8c564b",
}

var otherColors = []string{"#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39", "#7b4173"}

// color returns the fixed color of a target name.
func color(target string) string {
	if c, ok := knownColors[target]; ok {
		return c
	}
	h := fnv.New32a()
	h.Write([]byte(target))
	return otherColors[h.Sum32()%uint32(len(otherColors))]
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// svgDoc accumulates an SVG document.
type svgDoc struct{ b strings.Builder }

func (d *svgDoc) f(format string, args ...any) { fmt.Fprintf(&d.b, format, args...) }

func (d *svgDoc) start(h int, title string) {
	d.f(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	d.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12" style="background:#fff">`+"\n",
		svgWidth, h, svgWidth, h)
	d.f(`<text x="%d" y="24" text-anchor="middle" font-size="16" font-weight="bold">%s</text>`+"\n", svgWidth/2, esc(title))
}

func (d *svgDoc) text(x, y float64, anchor, extra, s string) {
	d.f(`<text x="%.1f" y="%.1f" text-anchor="%s"%s>%s</text>`+"\n", x, y, anchor, extra, esc(s))
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, stroke string) {
	d.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x1, y1, x2, y2, stroke)
}

func (d *svgDoc) end(w io.Writer) error {
	d.f("</svg>\n")
	_, err := io.WriteString(w, d.b.String())
	return err
}

// CloneSVG writes a line plot for the results of test (e.g. "clone whole file"): x = Result.X on a
// log10 axis, y = Median on a log10 axis (in the results' unit, label it), one polyline with markers
// per target (fixed distinct colors per target name, a legend), axis ticks at powers of ten with labels
// like "1", "10³", "10⁶" or "1e3" and for y "1 µs"/"1 ms"/"1 s" style when unit is seconds; skip
// results with Err or non-positive values. Title given.
func (r *Report) CloneSVG(w io.Writer, test, title string) error {
	type pt struct{ x, y float64 }
	series := map[string][]pt{}
	var targets []string
	unit, xLabel := "", "x"
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, res := range r.Results {
		if res.Test != test || !res.ok() || !(res.X > 0) || !(res.Median > 0) || math.IsInf(res.X, 0) {
			continue
		}
		if unit == "" {
			unit = res.Unit
			// "65536 extents" names the x axis "extents".
			if n, rest, ok := strings.Cut(res.Param, " "); ok {
				if _, err := strconv.ParseFloat(n, 64); err == nil {
					xLabel = rest
				}
			}
		}
		series[res.Target] = append(series[res.Target], pt{res.X, res.Median})
		xlo, xhi = min(xlo, res.X), max(xhi, res.X)
		ylo, yhi = min(ylo, res.Median), max(yhi, res.Median)
	}
	for _, t := range r.columns() {
		if len(series[t]) > 0 {
			targets = append(targets, t)
		}
	}

	const h = 480
	const left, right, top, bottom = 90.0, svgWidth - 170.0, 50.0, h - 60.0
	var d svgDoc
	d.start(h, title)
	if len(targets) == 0 {
		d.text(svgWidth/2, h/2, "middle", "", "no data")
		return d.end(w)
	}
	// Decade ranges.
	x0, x1 := decades(xlo, xhi)
	y0, y1 := decades(ylo, yhi)
	px := func(v float64) float64 { return left + (math.Log10(v)-float64(x0))/float64(x1-x0)*(right-left) }
	py := func(v float64) float64 { return bottom - (math.Log10(v)-float64(y0))/float64(y1-y0)*(bottom-top) }

	for e := x0; e <= x1; e += tickStep(x0, x1) {
		x := px(math.Pow(10, float64(e)))
		d.line(x, top, x, bottom, "#ddd")
		d.text(x, bottom+18, "middle", "", pow10Label(e))
	}
	for e := y0; e <= y1; e += tickStep(y0, y1) {
		y := py(math.Pow(10, float64(e)))
		d.line(left, y, right, y, "#ddd")
		d.text(left-6, y+4, "end", "", yLabel(e, unit))
	}
	d.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, right-left, bottom-top)
	d.text((left+right)/2, bottom+42, "middle", "", xLabel+" (log scale)")
	yl := "median"
	if unit != "" {
		yl += " (" + unit + ", log scale)"
	}
	d.f(`<text transform="translate(22,%.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+bottom)/2, esc(yl))

	for i, t := range targets {
		pts := series[t]
		slices.SortStableFunc(pts, func(a, b pt) int {
			switch {
			case a.x < b.x:
				return -1
			case a.x > b.x:
				return 1
			}
			return 0
		})
		c := color(t)
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
		}
		d.f(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(coords, " "))
		for _, p := range pts {
			d.f(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s</title></circle>`+"\n",
				px(p.x), py(p.y), c, esc(fmt.Sprintf("%s: %s at %s", t, fmtValue(p.y, unit), fmtNum(p.x))))
		}
		ly := top + 10 + float64(i)*20
		d.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", right+15, ly, right+40, ly, c)
		d.f(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", right+27.5, ly, c)
		d.text(right+46, ly+4, "start", "", t)
	}
	return d.end(w)
}

// decades returns the powers of ten enclosing [lo, hi], at least one decade apart.
func decades(lo, hi float64) (int, int) {
	a, b := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	if b <= a {
		b = a + 1
	}
	return a, b
}

// tickStep thins decade ticks to at most about 8.
func tickStep(a, b int) int { return max(1, (b-a+7)/8) }

// pow10Label labels 10^e: "1", "10", "100", "10³", "10⁻²".
func pow10Label(e int) string {
	switch e {
	case 0:
		return "1"
	case 1:
		return "10"
	case 2:
		return "100"
	}
	sup := strings.NewReplacer("-", "⁻", "0", "⁰", "1", "¹", "2", "²", "3", "³", "4", "⁴",
		"5", "⁵", "6", "⁶", "7", "⁷", "8", "⁸", "9", "⁹")
	return "10" + sup.Replace(strconv.Itoa(e))
}

// yLabel labels 10^e in unit: time units as "1 µs", "100 ms", "10 s"; others as pow10Label.
func yLabel(e int, unit string) string {
	shift, ok := map[string]int{"ns": -9, "µs": -6, "us": -6, "ms": -3, "s": 0}[unit]
	if !ok {
		return pow10Label(e)
	}
	e += shift // now a power of ten of seconds
	for _, u := range []struct {
		base int
		name string
	}{{-9, "ns"}, {-6, "µs"}, {-3, "ms"}, {0, "s"}} {
		if e >= u.base && e < u.base+3 {
			return pow10Label(e-u.base) + " " + u.name
		}
	}
	return pow10Label(e) + " s"
}

// BarsSVG writes grouped horizontal or vertical bars: one group per test in tests (and Param, if
// several), one bar per target with its median, labelled with its value; bars of results with Err
// are omitted (a small "skipped" label instead). Linear axis from 0. Title given. All tests in one
// chart must share a unit; if they don't, return an error.
func (r *Report) BarsSVG(w io.Writer, tests []string, title string) error {
	type group struct {
		label string
		bars  []*Result
	}
	var groups []group
	unit, dir := "", ""
	maxV := 0.0
	cols := r.columns()
	for _, test := range tests {
		params := r.params(test)
		for _, p := range params {
			g := group{label: test}
			if p != "" {
				g.label += " — " + p
			}
			for _, c := range cols {
				res := r.find(test, p, c)
				if res == nil {
					continue
				}
				if res.ok() {
					if unit == "" {
						unit, dir = res.Unit, "lower is better"
						if res.Higher {
							dir = "higher is better"
						}
					} else if res.Unit != unit {
						return fmt.Errorf("bars %q: unit %q of %s/%s differs from %q", title, res.Unit, test, c, unit)
					}
					maxV = max(maxV, res.Median)
				}
				g.bars = append(g.bars, res)
			}
			groups = append(groups, g)
		}
	}

	const left, right, top, rowH, barH = 170.0, svgWidth - 130.0, 50.0, 18.0, 13.0
	step := niceStep(maxV)
	axisMax := step * math.Ceil(maxV/step)
	if axisMax <= 0 {
		axisMax = step
	}
	px := func(v float64) float64 { return left + max(v, 0)/axisMax*(right-left) }

	// Lay out rows first to know the height.
	var body svgDoc
	y := top
	for _, g := range groups {
		y += rowH
		body.text(10, y-4, "start", ` font-weight="bold"`, g.label)
		for _, res := range g.bars {
			body.text(left-6, y+barH-2, "end", "", res.Target)
			if !res.ok() {
				why := res.Err
				if why == "" {
					why = "no value"
				}
				body.f(`<text x="%.1f" y="%.1f" font-size="10" font-style="italic" fill="#888">skipped<title>%s</title></text>`+"\n",
					left+4, y+barH-3, esc(why))
			} else {
				val := fmtValue(res.Median, res.Unit)
				body.f(`<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
					left, y, px(res.Median)-left, barH, color(res.Target), esc(res.Target+": "+val))
				body.text(px(res.Median)+4, y+barH-2, "start", ` font-size="11"`, val)
			}
			y += rowH
		}
		y += 8
	}
	bottom := y

	var d svgDoc
	d.start(int(bottom)+50, title)
	dec := max(0, -int(math.Floor(math.Log10(step))))
	for i := 0; float64(i)*step <= axisMax*(1+1e-9); i++ {
		v := float64(i) * step
		d.line(px(v), top, px(v), bottom, "#ddd")
		d.text(px(v), bottom+16, "middle", "", commas(strconv.FormatFloat(v, 'f', dec, 64)))
	}
	d.line(left, top, left, bottom, "#333")
	axis := unit
	if dir != "" {
		axis += " (" + dir + ")"
	}
	d.text((left+right)/2, bottom+36, "middle", "", axis)
	d.b.WriteString(body.b.String())
	return d.end(w)
}

// niceStep returns a 1, 2 or 5 times a power of ten step giving about 5 ticks up to v.
func niceStep(v float64) float64 {
	if !(v > 0) {
		return 1
	}
	raw := v / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
