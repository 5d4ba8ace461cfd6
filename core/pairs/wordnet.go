package pairs

import (
	"math/rand/v2"
	"strings"
	"unicode/utf8"

	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/wordnet"
)

// MethodWordNet tags pairs whose query is a title or TF-IDF query rewritten with WordNet.
const MethodWordNet = "wordnet"

// Knobs of the WordNet rewrite.
const (
	// maxSenses bounds the senses of a word compared with the episode (WordNet lists
	// rare senses last; "run" has 41 as a verb).
	maxSenses = 8
	// maxLemmaWords skips replacements longer than this many words.
	maxLemmaWords = 3
	// keepOrderProb is the chance that a query keeps its words' order and function words;
	// otherwise it becomes its content words in a shuffled order.
	keepOrderProb = 0.5
	// hypernymProb is the chance of taking a hypernym where a synonym is available too.
	hypernymProb = 0.3
	// flipNumberProb is the chance of changing a kept noun's number (dog <-> dogs).
	flipNumberProb = 0.5
	// replaceProb is the chance that a word WordNet knows is replaced: some words stay,
	// as in a real paraphrase.
	replaceProb = 0.8
)

// WordNet rewrites the queries of other generators (title and TF-IDF) into paraphrases
// that share fewer words with their episode, as a stand-in for a doc2query model:
//
//   - each content word is looked up in WordNet (base form by Morphy, nouns first, also as
//     a two-word phrase with the next word), its sense chosen by the overlap of the sense's
//     gloss, lemmas and hypernyms' lemmas with the episode text (else the most frequent
//     sense), and replaced by a synonym of that sense or, less often, a hypernym, preferring
//     words absent from the episode text, and inflected like the original;
//   - a word without a replacement changes inflection (volcanoes -> volcano, dog -> dogs);
//   - half of the queries keep their order; the others become their content words in a
//     shuffled order.
//
// WordNet is English: episodes tagged with another language get no queries, nor does a
// query of which fewer than half the content words are WordNet lemmas (untagged text in
// another language). The document is the base query's. A query that no rewrite changed is
// dropped. Everything random is fixed by the seed and the episode id.
type WordNet struct {
	db    *wordnet.DB
	seed  uint64
	bases []Generator
}

// NewWordNet returns the generator; bases are the generators whose queries it rewrites
// (their first candidates first, in turn).
func NewWordNet(db *wordnet.DB, seed uint64, bases ...Generator) *WordNet {
	return &WordNet{db: db, seed: seed, bases: bases}
}

// Method implements Generator.
func (g *WordNet) Method() string { return MethodWordNet }

// Generate implements Generator: up to n rewritten base queries.
func (g *WordNet) Generate(ep *ingest.Episode, n int) []Candidate {
	if ep.Language != "" && ep.Language != "en" && ep.Language != ingest.LangUnknown {
		return nil
	}
	lists := make([][]Candidate, len(g.bases))
	for i, b := range g.bases {
		lists[i] = b.Generate(ep, n)
	}
	rng := episodeRNG(g.seed, ep.ID)
	ctx := contentWords(ep.Text)
	var out []Candidate
	seen := map[string]bool{}
	for k := 0; len(out) < n; k++ {
		more := false
		for _, l := range lists {
			if k >= len(l) || len(out) >= n {
				continue
			}
			more = true
			q := g.rewrite(l[k].Query, ctx, rng)
			key := strings.ToLower(q)
			if q == "" || strings.EqualFold(q, l[k].Query) || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, Candidate{Query: q, Text: l[k].Text})
		}
		if !more {
			break
		}
	}
	return out
}

// contentWords is the set of s's words that are not stop words.
func contentWords(s string) map[string]bool {
	m := map[string]bool{}
	for _, t := range tokenize(s) {
		if !stopwords[t.word] {
			m[t.word] = true
		}
	}
	return m
}

// rewrite paraphrases query; "" when nothing changed or when fewer than half of its content
// words are WordNet lemmas.
func (g *WordNet) rewrite(query string, ctx map[string]bool, rng *rand.Rand) string {
	toks := tokenize(query)
	type word struct {
		text    string
		content bool
	}
	var words []word
	changed := false
	content, known := 0, 0
	for _, t := range toks {
		if isContent(t.word) {
			content++
			if _, _, ok := g.lookup(t.word); ok {
				known++
			}
		}
	}
	if 2*known < content {
		return ""
	}
	for i := 0; i < len(toks); i++ {
		w := toks[i].word
		if !isContent(w) {
			words = append(words, word{w, false})
			continue
		}
		if rng.Float64() >= replaceProb {
			words = append(words, word{w, true})
			continue
		}
		if i+1 < len(toks) && !stopwords[toks[i+1].word] { // a two-word lemma ("ice cream"), or ...
			if r, ok := g.replace(w+" "+toks[i+1].word, ctx, rng); ok {
				words = append(words, word{r, true})
				changed = true
				i++
				continue
			}
		}
		if r, ok := g.replace(w, ctx, rng); ok { // ... a one-word lemma
			words = append(words, word{r, true})
			changed = true
			continue
		}
		r := g.reinflect(w, rng)
		changed = changed || r != w
		words = append(words, word{r, true})
	}
	if !changed {
		return ""
	}
	var out []string
	if rng.Float64() < keepOrderProb {
		for _, w := range words {
			out = append(out, w.text)
		}
	} else {
		for _, w := range words {
			if w.content {
				out = append(out, w.text)
			}
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return strings.Join(out, " ")
}

// isContent reports whether a query word can be rewritten: no stop word, no number, at
// least three letters.
func isContent(w string) bool {
	return !stopwords[w] && !hasDigit(w) && utf8.RuneCountInString(w) >= 3
}

// lookup finds surface (a word or phrase) in WordNet: its part of speech and base form,
// nouns first; ok is false when WordNet lacks it.
func (g *WordNet) lookup(surface string) (wordnet.POS, string, bool) {
	for _, pos := range wordnet.AllPOS {
		if bases := g.db.Morph(surface, pos); len(bases) > 0 {
			return pos, bases[0], true
		}
	}
	return 0, "", false
}

// replace returns a synonym or hypernym of surface in the sense the episode context
// suggests, inflected like surface; ok is false when there is none.
func (g *WordNet) replace(surface string, ctx map[string]bool, rng *rand.Rand) (string, bool) {
	pos, base, ok := g.lookup(surface)
	if !ok {
		return "", false
	}
	senses, err := g.db.Senses(base, pos)
	if err != nil || len(senses) == 0 {
		return "", false
	}
	senses = commonSenses(senses[:min(len(senses), maxSenses)], base)
	best, bestScore := 0, 0
	hyps := make([][]wordnet.Synset, len(senses))
	for i, s := range senses {
		if hyps[i], err = g.db.Hypernyms(s); err != nil {
			return "", false
		}
		if sc := senseScore(s, hyps[i], base, ctx); sc > bestScore {
			best, bestScore = i, sc
		}
	}
	syn := candidates(senses[best].Lemmas, base, ctx)
	var hyp []string
	for _, h := range hyps[best] {
		hyp = append(hyp, candidates(h.Lemmas, base, ctx)...)
	}
	pick := syn
	if len(pick) == 0 || (len(hyp) > 0 && rng.Float64() < hypernymProb) {
		pick = hyp
	}
	if len(pick) == 0 {
		return "", false
	}
	r := pick[rng.IntN(len(pick))]
	return inflectLike(r, surface, base, pos), true
}

// commonSenses drops the senses in which base is a name (WordNet writes it capitalised:
// "Hope" the comedian among the senses of "hope"), unless base is only a name ("Iceland").
func commonSenses(senses []wordnet.Synset, base string) []wordnet.Synset {
	var out []wordnet.Synset
	for _, s := range senses {
		for _, l := range s.Lemmas {
			if wordnet.Key(l) == base && l == strings.ToLower(l) {
				out = append(out, s)
				break
			}
		}
	}
	if len(out) == 0 {
		return senses
	}
	return out
}

// senseScore counts the distinct content words of a sense (gloss, lemmas, hypernyms'
// lemmas and glosses) that occur in the episode context, the word itself not counted
// (a simplified Lesk).
func senseScore(s wordnet.Synset, hyps []wordnet.Synset, base string, ctx map[string]bool) int {
	text := []string{s.Gloss, strings.Join(s.Lemmas, " ")}
	for _, h := range hyps {
		text = append(text, h.Gloss, strings.Join(h.Lemmas, " "))
	}
	self := contentWords(strings.ReplaceAll(base, "_", " "))
	n := 0
	for w := range contentWords(strings.ReplaceAll(strings.Join(text, " "), "_", " ")) {
		if ctx[w] && !self[w] {
			n++
		}
	}
	return n
}

// candidates are the usable replacements among lemmas, as lower-case words: not the base
// itself, at most maxLemmaWords words, and no proper or Latin names ("Canis familiaris")
// for a common word; those with no word in the episode context come first, and only they
// are returned when there are any.
func candidates(lemmas []string, base string, ctx map[string]bool) []string {
	var fresh, known []string
	common := true // base is a common word in this synset (WordNet writes it in lower case)
	for _, l := range lemmas {
		if wordnet.Key(l) == base && l != strings.ToLower(l) {
			common = false
		}
	}
	for _, l := range lemmas {
		w := strings.ToLower(strings.ReplaceAll(l, "_", " "))
		f := strings.Fields(w)
		if wordnet.Key(w) == base || len(f) == 0 || len(f) > maxLemmaWords || (common && l != strings.ToLower(l)) {
			continue
		}
		inCtx := false
		for _, x := range f {
			inCtx = inCtx || ctx[x]
		}
		if inCtx {
			known = append(known, w)
		} else {
			fresh = append(fresh, w)
		}
	}
	if len(fresh) > 0 {
		return fresh
	}
	return known
}

// inflectLike gives replacement the inflection surface has relative to its base form:
// a plural noun, a verb's -ing, -ed or -s form. Only the last word of a phrase is inflected.
func inflectLike(replacement, surface, base string, pos wordnet.POS) string {
	surface = wordnet.Key(surface)
	if surface == base {
		return replacement
	}
	switch {
	case pos == wordnet.Noun, pos == wordnet.Verb && strings.HasSuffix(surface, "s"):
		return inflectLast(replacement, plural)
	case pos == wordnet.Verb && strings.HasSuffix(surface, "ing"):
		return inflectLast(replacement, gerund)
	case pos == wordnet.Verb && strings.HasSuffix(surface, "ed"):
		return inflectLast(replacement, past)
	}
	return replacement
}

// reinflect changes a word that has no replacement: an inflected word goes to its base
// form; a singular noun becomes plural (with probability flipNumberProb). Other words stay.
func (g *WordNet) reinflect(w string, rng *rand.Rand) string {
	pos, base, ok := g.lookup(w)
	if !ok || strings.Contains(base, "_") {
		return w
	}
	if base != w {
		return base
	}
	if pos == wordnet.Noun && rng.Float64() < flipNumberProb {
		return plural(w)
	}
	return w
}

// inflectLast applies f to the last word of phrase.
func inflectLast(phrase string, f func(string) string) string {
	k := strings.LastIndexByte(phrase, ' ')
	return phrase[:k+1] + f(phrase[k+1:])
}

// plural is the regular English plural (and third person singular) of w.
func plural(w string) string {
	switch {
	case strings.HasSuffix(w, "s"), strings.HasSuffix(w, "x"), strings.HasSuffix(w, "z"),
		strings.HasSuffix(w, "ch"), strings.HasSuffix(w, "sh"):
		return w + "es"
	case strings.HasSuffix(w, "y") && len(w) > 1 && !strings.ContainsRune("aeiou", rune(w[len(w)-2])):
		return w[:len(w)-1] + "ies"
	}
	return w + "s"
}

// gerund is the regular -ing form of w.
func gerund(w string) string {
	if strings.HasSuffix(w, "e") && !strings.HasSuffix(w, "ee") && len(w) > 2 {
		return w[:len(w)-1] + "ing"
	}
	return w + "ing"
}

// past is the regular -ed form of w.
func past(w string) string {
	switch {
	case strings.HasSuffix(w, "e"):
		return w + "d"
	case strings.HasSuffix(w, "y") && len(w) > 1 && !strings.ContainsRune("aeiou", rune(w[len(w)-2])):
		return w[:len(w)-1] + "ied"
	}
	return w + "ed"
}
