"""Pictures on posts: up to four a post, each with its alt text, uploaded with the post, made
ready by a job (re-encoded, thumbnailed, stripped of EXIF) and served by any instance."""
