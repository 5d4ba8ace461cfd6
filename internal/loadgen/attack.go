package loadgen

import (
	"context"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// AttackOptions configure an Attacker.
type AttackOptions struct {
	// Rate is the fixed request rate per second; 0 sends as fast as Workers allow.
	Rate int
	// Workers is the number of concurrent requests with Rate 0, and at least that many
	// otherwise (up to max(Workers, 4 x Rate)).
	Workers int
	// Duration is how long requests are sent; Timeout bounds one request.
	Duration, Timeout time.Duration
	// Name labels the attack's results.
	Name string
}

// Attacker is an open-loop load: requests go out at the rate whatever the answers' delay
// (or, at Rate 0, from a fixed pool of workers), over kept-alive connections, without
// following redirects.
type Attacker struct {
	atk *vegeta.Attacker
	o   AttackOptions
}

// NewAttacker prepares an attack.
func NewAttacker(o AttackOptions) *Attacker {
	opts := []func(*vegeta.Attacker){vegeta.Timeout(o.Timeout), vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow)}
	if o.Rate <= 0 {
		opts = append(opts, vegeta.Workers(uint64(o.Workers)), vegeta.MaxWorkers(uint64(o.Workers)))
	} else {
		opts = append(opts, vegeta.MaxWorkers(uint64(max(o.Workers, 4*o.Rate))))
	}
	return &Attacker{atk: vegeta.NewAttacker(opts...), o: o}
}

// Run sends the requests target makes for the duration, or until ctx is done (the requests
// in flight then still count), and returns every result in the order they came back.
func (a *Attacker) Run(ctx context.Context, target vegeta.Targeter) []*vegeta.Result {
	var results []*vegeta.Result
	ch := a.atk.Attack(target, vegeta.Rate{Freq: a.o.Rate, Per: time.Second}, a.o.Duration, a.o.Name)
	done := ctx.Done()
	for res := range ch {
		results = append(results, res)
		select {
		case <-done:
			a.atk.Stop()
			done = nil
		default:
		}
	}
	return results
}
