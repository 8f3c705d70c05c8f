package storage

import "context"

// inOrder runs jobs, at most depth at a time, and passes their results to
// emit in the order the jobs were started. next returns the next job, or nil
// when there is none. On the first error (from next, a job or emit) it
// cancels the context the jobs see, waits for every started job to return,
// and returns that error; so when inOrder returns, no job is running.
func inOrder[T any](ctx context.Context, depth int,
	next func(context.Context) (func(context.Context) (T, error), error),
	emit func(T) error,
) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	var queue []chan result
	pop := func() error {
		r := <-queue[0]
		queue = queue[1:]
		if r.err != nil {
			return r.err
		}
		return emit(r.v)
	}
	fail := func(err error) error {
		cancel()
		for _, ch := range queue {
			<-ch
		}
		return err
	}
	for {
		if len(queue) >= depth {
			if err := pop(); err != nil {
				return fail(err)
			}
		}
		job, err := next(ctx)
		if err != nil {
			return fail(err)
		}
		if job == nil {
			break
		}
		ch := make(chan result, 1)
		queue = append(queue, ch)
		go func() {
			v, err := job(ctx)
			ch <- result{v, err}
		}()
	}
	for len(queue) > 0 {
		if err := pop(); err != nil {
			return fail(err)
		}
	}
	return nil
}
