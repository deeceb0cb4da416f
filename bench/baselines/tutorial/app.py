# The seed tutorial's app, as the tutorial wrote it: Flask's development server with threaded=False,
# and GET /users returning every row. The only change is that the database URL comes from the
# environment instead of being written into the code. Lint and formatter leave it as the tutorial had it.
# ruff: noqa
# fmt: off
import os

from flask import Flask, request, jsonify
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)

app.config['SQLALCHEMY_DATABASE_URI'] = os.environ['DATABASE_URL']
app.config['SQLALCHEMY_TRACK_MODIFICATIONS'] = False
app.config['SQLALCHEMY_USERNAME'] = os.environ['POSTGRES_USER']
app.config['SQLALCHEMY_PASSWORD'] = os.environ['POSTGRES_PASSWORD']

db = SQLAlchemy(app)

class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
    created_at = db.Column(db.DateTime, server_default=db.func.now())

    def __repr__(self):
        return '<User %r>' % self.name

@app.route('/users', methods=['POST'])
def create_user():
    name = request.json['name']
    user = User(name=name)
    db.session.add(user)
    db.session.commit()
    return jsonify({'message': 'User created'}), 201

@app.route('/users', methods=['GET'])
def get_users():
    users = User.query.all()
    return jsonify([{'name': user.name, 'created_at': user.created_at} for user in users]), 200

if __name__ == '__main__':
      app.app_context().push()
      db.create_all()
      app.run(host='0.0.0.0', port=5000, threaded=False)
