package evacd

import (
	"slices"
	"testing"
)

// A read of Nova that started before the daemon disabled or enabled a host does not undo what
// it did; the reads after it do.
func TestAReadOfNovaOlderThanTheDaemonsOwnChangeDoesNotUndoIt(t *testing.T) {
	var p processesDown
	since := p.mark()
	p.set("cmp1", []string{"libvirtd"}) // while Nova was being read
	p.replace(map[string][]string{"cmp2": {"ovn-controller"}}, since)
	got := p.snapshot()
	if !slices.Equal(got["cmp1"], []string{"libvirtd"}) || !slices.Equal(got["cmp2"], []string{"ovn-controller"}) || len(got) != 2 {
		t.Errorf("after a stale read: %v; want cmp1's own change kept and cmp2 from Nova", got)
	}
	since = p.mark()
	p.set("cmp2", nil) // enabled again meanwhile
	p.replace(map[string][]string{"cmp1": {"libvirtd"}, "cmp2": {"ovn-controller"}}, since)
	if got := p.snapshot(); len(got) != 1 || got["cmp2"] != nil {
		t.Errorf("after a stale read: %v; want cmp2 enabled as the daemon did", got)
	}
	// A later read is the truth: an operator enabled cmp1 by hand.
	p.replace(map[string][]string{}, p.mark())
	if got := p.snapshot(); len(got) != 0 {
		t.Errorf("after a fresh read: %v; want nothing", got)
	}
}

// A first read of Nova, then the daemon's own change: nothing assumed about which came first.
func TestTheDaemonsChangeAfterAReadOfNova(t *testing.T) {
	var p processesDown
	p.replace(map[string][]string{}, p.mark())
	p.set("cmp1", []string{"libvirtd"})
	if got := p.snapshot(); !slices.Equal(got["cmp1"], []string{"libvirtd"}) {
		t.Errorf("after a read, then the daemon's change: %v", got)
	}
}
