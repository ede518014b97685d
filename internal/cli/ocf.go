package cli

// ocfEntries lists the OCF resource agents (ocf:computeha:<name>).
func ocfEntries() []Entry { return nil }
