"""GA4GH DRS 1.5 and WES 1.1 over the Backend (each a client of the same interface as the REST API,
never a side door), and the file-download endpoint they hand out: a collection's files by content
(PDH) or record (UUID), streamed through the keep client with byte ranges."""
