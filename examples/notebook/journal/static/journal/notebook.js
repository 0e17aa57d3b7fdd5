// Shows the size of the chosen attachment next to the file input, before it is uploaded.
document.addEventListener("DOMContentLoaded", () => {
  const input = document.querySelector('input[type="file"]');
  if (!input) return;
  const note = document.createElement("span");
  note.className = "meta";
  input.after(note);
  input.addEventListener("change", () => {
    const file = input.files[0];
    note.textContent = file ? ` ${Math.ceil(file.size / 1024)} KiB` : "";
  });
});
