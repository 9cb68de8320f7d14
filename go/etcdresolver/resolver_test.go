package etcdresolver

import "testing"

func TestAddressOfReadsEveryLayout(t *testing.T) {
	cases := []struct{ key, value, want string }{
		{"/services/user/127.0.0.1:8080", "", "127.0.0.1:8080"},
		{"/services/user/a", "127.0.0.1:8081", "127.0.0.1:8081"},
		{"/services/user/e1", `{"Op":0,"Addr":"127.0.0.1:8082","Metadata":null}`, "127.0.0.1:8082"},
		{"/services/user/user-1", `{"id":"user-1","address":"127.0.0.1:5001","port":5001}`, "127.0.0.1:5001"},
	}
	for _, c := range cases {
		if got, err := AddressOf(c.key, c.value); err != nil || got != c.want {
			t.Errorf("AddressOf(%q, %q) = %q, %v; want %q", c.key, c.value, got, err, c.want)
		}
	}
}

func TestAddressOfRefusesWhatIsNoAddress(t *testing.T) {
	for _, value := range []string{"hello", "127.0.0.1:0", `{"Op":1,"Addr":"127.0.0.1:1"}`, `{"id":"x"}`, "{oops"} {
		if got, err := AddressOf("/services/user/x", value); err == nil {
			t.Errorf("AddressOf(%q) = %q, want an error", value, got)
		}
	}
}
