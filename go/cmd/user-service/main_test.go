package main

import "testing"

func TestLabAddress(t *testing.T) {
	cases := []struct {
		host, labNet string
		ok           bool
	}{
		{"127.0.0.1", "", true},
		{"127.0.0.23", "", true},
		{"10.213.7.9", "", false},
		{"10.213.7.9", "10.213.7.0/24", true},
		{"10.213.8.9", "10.213.7.0/24", false},
		{"::1", "", false},
		{"localhost", "", false},
		{"10.213.7.9", "not-a-cidr", false},
	}
	for _, c := range cases {
		if got := labAddress(c.host, c.labNet); got != c.ok {
			t.Errorf("labAddress(%q, %q) = %v, want %v", c.host, c.labNet, got, c.ok)
		}
	}
}
