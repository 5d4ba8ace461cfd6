package edge

import (
	"context"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/podsearch/podsearch/internal/testenv"
)

// chromium returns the headless browser to drive, skipping the test when none is installed
// (failing instead when PODSEARCH_REQUIRE_CHROMIUM=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.SkipOrFail(t, testenv.Chromium, "chromium is not installed (apt-get install chromium): the browser test of the search page")
	return ""
}

// TestSearchPageInHeadlessChromium loads the search page with a query in a real browser,
// lets its script call the API and render, and checks the rendered DOM lists the results
// the API returns for that query.
func TestSearchPageInHeadlessChromium(t *testing.T) {
	bin := chromium(t)
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))
	q := fx.queries[2].Text
	api := mustSearch(t, n.base, "q", q, "k", "10")
	if len(api.Results) == 0 {
		t.Fatal("the API found nothing to render")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=15000", "--dump-dom", n.base+"/?q="+url.QueryEscape(q))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	if !strings.Contains(dom, `class="result"`) || !strings.Contains(dom, "results in") {
		t.Fatalf("the page rendered no results:\n%.2000s", dom)
	}
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\u00a0", "&nbsp;")
	for _, h := range api.Results {
		title := h.Title
		if title == "" {
			title = h.ID
		}
		if !strings.Contains(dom, esc.Replace(title)) {
			t.Errorf("result %q missing from the rendered page", title)
		}
	}
	if got := strings.Count(dom, `class="result"`); got != len(api.Results) {
		t.Errorf("page lists %d results, the API %d", got, len(api.Results))
	}
}
