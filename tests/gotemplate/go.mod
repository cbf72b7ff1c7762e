module agentfleet/tests/gotemplate

go 1.22
