"""`mixtask serve`: the HTTP API and the slider page (`app`, `page.html`)."""
