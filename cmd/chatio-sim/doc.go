// Command chatio-sim runs the chat.io customer protocol v0.5 simulator
// (package chatiosim) as a standalone server: the customer websocket, the
// file upload, the demo agent bot and the /control/v1 API. See README.md.
package main
