package session

import "testing"

func TestCustomerInSummary(t *testing.T) {
	for _, c := range []struct{ payload, want string }{
		{`{"chats_summary":[{"users":[{"id":"agent@x","type":"agent"},{"id":"cust-1","type":"customer"}]}],"total_chats":1}`, "cust-1"},
		{`{"chats_summary":[],"total_chats":0}`, ""},
		{`{"chats_summary":[{"users":[{"id":"agent@x","type":"agent"}]}]}`, ""},
		{`not json`, ""},
	} {
		if got := customerInSummary([]byte(c.payload)); got != c.want {
			t.Errorf("customerInSummary(%s) = %q, want %q", c.payload, got, c.want)
		}
	}
}
