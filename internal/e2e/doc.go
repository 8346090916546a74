// Package e2e holds the gateway's end-to-end tests: the whole service
// (router, session pool, upstream client) over real HTTP against an
// upstream in the same process — the chat.io simulator, or a fake that
// plays an sdk-oracle scenario frame by frame so that REST bodies and
// stream events can be compared with what the official SDK resolves and
// emits for the same frames (testdata/oracle).
package e2e
