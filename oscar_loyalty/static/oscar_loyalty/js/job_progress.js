// Follow a running job (mass accrual, import, export): move the bar every second and reload
// the page for the result when the job ends. Expects #job with data-progress-url and
// data-finished, and #job_progress as the bar.
(function () {
    var box = document.getElementById('job');
    if (!box || box.dataset.finished === '1') { return; }
    var bar = document.getElementById('job_progress');
    var poll = function () {
        fetch(box.dataset.progressUrl, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
            .then(function (response) { return response.json(); })
            .then(function (data) {
                bar.style.width = data.percent + '%';
                bar.setAttribute('aria-valuenow', data.percent);
                bar.textContent = data.percent + '%';
                if (data.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
            })
            .catch(function () { window.setTimeout(poll, 3000); });
    };
    window.setTimeout(poll, 1000);
})();
