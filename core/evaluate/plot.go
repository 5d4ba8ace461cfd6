package evaluate

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// palette colours the curves in turn; base-model curves are dashed.
var palette = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

// PlotRecall writes a PNG of Recall@k against k for each curve.
func PlotRecall(curves []Curve, title, path string) error {
	if len(curves) == 0 {
		return fmt.Errorf("evaluate: no curve to plot")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "k"
	p.Y.Label.Text = "Recall@k"
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	for i, c := range curves {
		pts := make(plotter.XYs, len(c.Recall))
		for k, v := range c.Recall {
			pts[k] = plotter.XY{X: float64(k + 1), Y: v}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("evaluate: curve %s: %w", c.Label, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		if strings.HasSuffix(c.Label, Base) {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(c.Label, l)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
