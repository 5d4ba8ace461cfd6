package tokenizer

// Tokenizer turns text into model token ids. Implementations are safe for concurrent use.
type Tokenizer interface {
	// Encode returns the token ids of text. The result is not clipped to the model's
	// maximum length: the encoder clips. Each run of invalid UTF-8 bytes reads as one U+FFFD.
	Encode(text string) []int32
	// VocabSize is the number of ids the tokenizer can produce; every id is in [0, VocabSize).
	VocabSize() int
}
