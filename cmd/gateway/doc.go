// Command gateway serves the chat.io customer chat protocol v0.5 as REST and
// Server-Sent Events (see api/openapi.yaml). Configured by the environment:
// `gateway -h` prints the table. With CHATIO_URL unset it runs against an
// in-process chat.io simulator with a demo agent.
package main
