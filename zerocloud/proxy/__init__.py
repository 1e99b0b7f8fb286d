"""The proxy side: proxy_query and job_chain, and what they run on."""
