// Package ingest builds the episode corpus that podsearch indexes and trains on, from real
// podcast data in three layouts:
//
//   - the Kaggle layout of the reference article: a folder with podcasts.csv and episodes.csv,
//     inner-joined on the podcast id (ReadKaggle);
//   - RSS 2.0 / iTunes podcast feeds, messy ones included (ReadRSS, ReadRSSPath);
//   - JSON Lines with a field mapping, such as the Taddy export (ReadJSONL).
//
// Readers turn their input into raw Records and report what they could not read as Rejects
// (a malformed row, an unparseable feed, an episode whose podcast is missing): nothing
// disappears silently. Build then cleans every field (package textclean), composes the
// episode text "episode title. episode description. show title. show description", fills
// the language (the source's tag, else detected), drops empty records, repeated ids and
// exact-duplicate texts (each with a Reject), shuffles deterministically and counts every
// step in Stats.
//
// The corpus file is JSON Lines of Episode (WriteCorpus, ReadCorpus); it is what the rest of
// podsearch reads. ReadLines and WriteLines are the generic JSON Lines helpers behind it.
package ingest
