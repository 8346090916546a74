// Package chatiotest runs the chat.io simulator (internal/chatiosim) for
// a test: Start serves one on 127.0.0.1 and closes it at the test's end.
// It is for tests only (it links testing and net/http/httptest); programs
// embed the simulator through chatiosim itself.
//
// Concurrency: Start is called from the test's goroutine; the Server it
// returns is chatiosim's, safe for concurrent use, and the test's Cleanup
// owns its end.
package chatiotest
