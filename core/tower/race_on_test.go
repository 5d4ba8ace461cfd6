//go:build race

package tower

// raceEnabled is true under -race, where every loop runs several times slower: the long
// tests then check a sample (documented at each use).
const raceEnabled = true
