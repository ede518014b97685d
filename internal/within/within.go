// Package within bounds calls that take no context.
package within

import "context"

// Within runs f, a call that takes no context (a client library's, a file system's that may
// hang), and gives up when ctx ends: f's late result is dropped, and its goroutine left to
// return when it can.
func Within[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
