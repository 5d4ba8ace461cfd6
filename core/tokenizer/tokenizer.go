package tokenizer

import "errors"

// Tokenizer turns text into model token ids.
type Tokenizer interface {
	// Encode returns the token ids of text (not clipped; the encoder clips).
	Encode(text string) []int32
}

// LoadFile reads the USE-lite vocabulary (vocab.json) from path.
func LoadFile(path string) (Tokenizer, error) {
	return nil, errors.New("tokenizer: not implemented yet")
}
