// Fills in "When" with the current time (UTC, as the server reads it): one click less to report.
document.addEventListener("DOMContentLoaded", () => {
  const when = document.querySelector('input[type="datetime-local"]');
  if (when && !when.value) {
    when.value = new Date().toISOString().slice(0, 16);
  }
});
