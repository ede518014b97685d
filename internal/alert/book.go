package alert

import (
	"slices"
	"strings"
	"time"
)

// Book keeps which alerts fire. It is not safe for concurrent use; the [Notifier] owns one.
type Book struct {
	rules   []Rule
	pending map[string]time.Time // key → since when its condition holds, For not over yet
	firing  map[string]Alert
}

// NewBook returns an empty book for rules (their For).
func NewBook(rules []Rule) *Book {
	return &Book{rules: rules, pending: map[string]time.Time{}, firing: map[string]Alert{}}
}

// Update takes the alerts whose condition holds at now (from [Evaluate]) and returns what
// changed: the alerts that start firing (StartsAt when their condition began) and those
// resolved (EndsAt now), each sorted by key, firing first.
func (b *Book) Update(now time.Time, holding []Alert) []Alert {
	var fired, resolved []Alert
	held := make(map[string]bool, len(holding))
	for _, a := range holding {
		k := a.Key()
		held[k] = true
		if _, ok := b.firing[k]; ok {
			continue
		}
		since, ok := b.pending[k]
		if !ok {
			since = now
			b.pending[k] = now
		}
		r, _ := ruleFor(b.rules, a.Name())
		if now.Sub(since) < r.For {
			continue
		}
		delete(b.pending, k)
		a.StartsAt, a.EndsAt = since, time.Time{}
		b.firing[k] = a
		fired = append(fired, a)
	}
	for k := range b.pending {
		if !held[k] {
			delete(b.pending, k)
		}
	}
	for k, a := range b.firing {
		if !held[k] {
			delete(b.firing, k)
			a.EndsAt = now
			resolved = append(resolved, a)
		}
	}
	sortByKey(fired)
	sortByKey(resolved)
	return append(fired, resolved...)
}

// Firing returns the alerts firing now, sorted by key.
func (b *Book) Firing() []Alert {
	out := make([]Alert, 0, len(b.firing))
	for _, a := range b.firing {
		out = append(out, a)
	}
	sortByKey(out)
	return out
}

func sortByKey(as []Alert) {
	slices.SortFunc(as, func(a, b Alert) int { return strings.Compare(a.Key(), b.Key()) })
}
