import EchoServer
